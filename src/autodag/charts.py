"""The demo's training curves: always a CSV file, and charts when matplotlib is installed.

matplotlib (in the ``viz`` extra) is imported only inside :func:`draw_curves`, so
importing autodag never imports it. The charts are drawn on a ``Figure`` of their own
with the Agg canvas, never through ``pyplot``, so no global figure state is touched.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = [
    "CSV_HEADER", "draw_curves", "draw_decision_regions", "matplotlib_available",
    "write_curves_csv",
]

#: The CSV's columns: accuracy in percent, as the demo's console output prints it.
CSV_HEADER: Final = ("step", "loss", "accuracy_percent")
LOSS_LABEL: Final = "loss (mean cross-entropy)"
ACCURACY_LABEL: Final = "training accuracy (%)"
STEP_LABEL: Final = "Adam step"
_SIZE_INCHES: Final = (8.0, 4.5)
_DPI: Final = 100
_BLUE: Final = "#1f77b4"
_ORANGE: Final = "#e67300"


def matplotlib_available() -> bool:
    """Whether matplotlib can be imported (the charts need it, the CSV does not)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _check(losses: Sequence[float], accuracies: Sequence[float]) -> None:
    if len(losses) != len(accuracies) or not losses:
        raise ValueError(
            f"curves need one loss and one accuracy per step, got {len(losses)} losses "
            f"and {len(accuracies)} accuracies"
        )


def write_curves_csv(
    path: Path, losses: Sequence[float], accuracies: Sequence[float]
) -> Path:
    """Write one row per step: step (from 1), loss, accuracy in percent (given as 0..1)."""
    _check(losses, accuracies)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for step, (loss, acc) in enumerate(zip(losses, accuracies), start=1):
            writer.writerow([step, f"{loss:.8g}", f"{100 * acc:.2f}"])
    return path


def draw_curves(
    stem: Path, losses: Sequence[float], accuracies: Sequence[float], *, title: str
) -> list[Path] | None:
    """Draw loss and accuracy against the step to ``stem``.png and .svg; None without matplotlib."""
    _check(losses, accuracies)
    try:
        import matplotlib
    except ImportError:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogFormatter, MaxNLocator, PercentFormatter

    class PlainLogFormatter(LogFormatter):
        """Log-axis labels as plain numbers (0.2, 0.06), on the ticks LogFormatter picks."""

        def __call__(self, x: float, pos: int | None = None) -> str:
            return f"{x:g}" if super().__call__(x, pos) else ""

    steps = range(1, len(losses) + 1)
    percent = [100 * a for a in accuracies]
    # rc_context restores the settings afterwards. SVG text stays text (searchable, and
    # testable) and a fixed hash salt keeps the SVG's ids the same from run to run.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "autodag-demo"}):
        fig = Figure(figsize=_SIZE_INCHES, dpi=_DPI, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        (loss_line,) = ax.plot(steps, losses, color=_BLUE, label=LOSS_LABEL)
        if min(losses) > 0:
            ax.set_yscale("log")  # the loss falls by orders of magnitude
            ax.yaxis.set_major_formatter(PlainLogFormatter())
            ax.yaxis.set_minor_formatter(PlainLogFormatter())
        ax.set_xlabel(STEP_LABEL)
        ax.set_ylabel(LOSS_LABEL, color=_BLUE)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="major", alpha=0.3)
        acc_ax = ax.twinx()
        (acc_line,) = acc_ax.plot(steps, percent, color=_ORANGE, label=ACCURACY_LABEL)
        acc_ax.set_ylim(0, 103)  # room for a line at 100%
        acc_ax.yaxis.set_major_formatter(PercentFormatter(100))
        acc_ax.set_ylabel(ACCURACY_LABEL, color=_ORANGE)
        fig.legend(handles=[loss_line, acc_line], loc="outside lower center", ncols=2)
        ax.set_title(title)
        png = stem.with_suffix(".png")
        svg = stem.with_suffix(".svg")
        fig.savefig(png, format="png")
        # No date in the SVG, so the same run writes the same file.
        fig.savefig(svg, format="svg", metadata={"Date": None})
    return [png, svg]


#: Grid points per side of the decision-regions picture.
_GRID: Final = 200


def draw_decision_regions(
    stem: Path, predict: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]],
    features: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], *, title: str,
) -> list[Path] | None:
    """Draw the class ``predict`` gives each point of the plane, with the training points
    on top, to ``stem``.png and .svg; None without matplotlib.

    ``predict`` maps an ``(m, 2)`` array of points to their ``m`` class indices.
    """
    if features.ndim != 2 or features.shape[1] != 2 or len(features) != len(labels):
        raise ValueError(f"decision regions need (n, 2) points and n labels, got points "
                         f"of shape {features.shape} and {len(labels)} labels")
    try:
        import matplotlib
    except ImportError:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    pad = 0.1 * float(np.ptp(features))
    lo, hi = features.min(axis=0) - pad, features.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], _GRID), np.linspace(lo[1], hi[1], _GRID))
    classes = np.asarray(predict(np.stack([gx.ravel(), gy.ravel()], axis=1)))
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "autodag-demo"}):
        fig = Figure(figsize=(6.0, 6.0), dpi=_DPI, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        # Nearest-neighbour pixels, not contours: the picture shows exactly the classes.
        ax.imshow(classes.reshape(gx.shape), origin="lower", interpolation="nearest",
                  extent=(lo[0], hi[0], lo[1], hi[1]), aspect="auto", alpha=0.35,
                  cmap=ListedColormap([_BLUE, _ORANGE]), vmin=0, vmax=1)
        for k, color in enumerate((_BLUE, _ORANGE)):
            pts = features[labels == k]
            ax.scatter(pts[:, 0], pts[:, 1], s=8, color=color, edgecolors="none",
                       label=f"class {k}")
        ax.set_xlabel("x0")
        ax.set_ylabel("x1")
        ax.legend(loc="upper right")
        ax.set_title(title)
        png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
        fig.savefig(png, format="png")
        fig.savefig(svg, format="svg", metadata={"Date": None})
    return [png, svg]
