"""The ``autodag demo`` command: the tutorial's worked example, then a network trained.

The training part fits a small MLP classifier to a synthetic two-spirals data set (fixed
seed, nothing downloaded) with Adam, full batch, and writes the graph pictures (gradient
magnitudes highlighted) and the loss and accuracy curves to the output folder. Its ops
come from the first-party plugins: ``tanh`` (autodag-math), ``mean`` (autodag-array) and
``softmax_cross_entropy`` (autodag-nn).

What it writes does not depend on what is installed, only what it adds: DOT text and a
CSV of the curves always; SVG pictures with Graphviz (the ``graphviz`` package and the
``dot`` program), PNG and SVG charts with matplotlib. A progress bar needs tqdm, plain
lines stand in without it; a note names each missing piece and how to install it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

import numpy as np

from .charts import draw_curves, draw_decision_regions, matplotlib_available, write_curves_csv
from .demo_checkpoint import resume_in_fresh_process, write_checkpoint
from .demo_dask import dask_missing, importable, run_dask, train_spirals_dask
from .demo_model import FULL as FULL
from .demo_model import QUICK as QUICK
from .demo_model import mlp, two_spirals
from .execute import backward_pass, evaluate, forward_pass, topological_sort
from .graph import Graph
from .nodes import Constant, Node, Placeholder, Variable
from .optim import Adam
from .progress import Progress, ProgressLines, make_progress
from .registry import get_registry
from .viz import render, to_dot

__all__ = [
    "Progress",
    "ProgressLines",
    "Tools",
    "TrainResult",
    "available_tools",
    "make_progress",
    "missing_ops",
    "run_demo",
    "seed_example",
    "train_spirals",
    "train_spirals_dask",
    "two_spirals",
]

#: Ops the training needs, and the plugin distribution providing each.
NEEDED_OPS: Final = {
    "tanh": "autodag-math",
    "mean": "autodag-array",
    "softmax_cross_entropy": "autodag-nn",
}
_PIP_VIZ: Final = "pip install 'autodag[viz]'"
_NOTE_GRAPHVIZ_PACKAGE: Final = (
    "note: graph pictures are DOT text only (no SVG): the graphviz Python package is not "
    f"installed; {_PIP_VIZ}"
)
_NOTE_DOT_PROGRAM: Final = (
    "note: graph pictures are DOT text only (no SVG): Graphviz's 'dot' program is not on "
    "PATH; install Graphviz with the system package manager (e.g. apt-get install graphviz, "
    "brew install graphviz; see https://graphviz.org/download/)"
)
_NOTE_MATPLOTLIB: Final = (
    f"note: the curves are in curves.csv only (no charts): matplotlib is not installed; "
    f"{_PIP_VIZ}"
)
_NOTE_TQDM: Final = f"note: progress shown as plain lines: tqdm is not installed; {_PIP_VIZ}"
#: ``--dask``: training steps, worker processes and row chunks of the data set.


@dataclass(frozen=True)
class Tools:
    """Which optional pieces are installed; each one only adds files or a nicer display."""

    graphviz_package: bool
    dot_program: bool
    matplotlib: bool
    tqdm: bool

    @property
    def graphviz(self) -> bool:
        """Whether graph pictures can be rendered to SVG."""
        return self.graphviz_package and self.dot_program


def available_tools() -> Tools:
    """Look up the optional pieces the demo uses."""
    return Tools(
        graphviz_package=importable("graphviz"),
        dot_program=shutil.which("dot") is not None,
        matplotlib=matplotlib_available(),
        tqdm=importable("tqdm"),
    )


def _graph_notes(tools: Tools) -> list[str]:
    notes = [] if tools.graphviz_package else [_NOTE_GRAPHVIZ_PACKAGE]
    return notes if tools.dot_program else [*notes, _NOTE_DOT_PROGRAM]


def _write_graph(
    node: Node, out_dir: Path, stem: str, title: str, *, highlight: bool, tools: Tools
) -> tuple[list[Path], str | None]:
    """``stem``.dot always, ``stem``.svg with Graphviz; and a note when rendering failed."""
    dot = out_dir / f"{stem}.dot"
    dot.write_text(to_dot(node, title=title, highlight=highlight), encoding="utf-8")
    if not tools.graphviz:
        return [dot], None
    try:
        svg = render(node, out_dir / f"{stem}.svg", title=title, highlight=highlight)
    except RuntimeError as exc:
        # Found by the look-up but not usable (a broken install, a failing 'dot'): both
        # viz errors are RuntimeErrors. The DOT file is still there; say what failed.
        return [dot], f"note: graph pictures are DOT text only (no SVG): {exc}"
    return [dot, svg], None


def seed_example(out_dir: Path, stream: TextIO) -> Path:
    """Build z = (x*y + c)*c + x, print ordering, value and gradients; write the DOT file.

    Also writes ``seed-graph.svg`` when Graphviz is installed.
    """
    return _seed_example(out_dir, stream, available_tools())[0][0]


def _seed_example(
    out_dir: Path, stream: TextIO, tools: Tools
) -> tuple[list[Path], str | None]:
    val1, val2, val3 = 0.9, 0.4, 1.3
    with Graph():
        x = Variable(val1, name="x")
        y = Variable(val2, name="y")
        c = Constant(val3, name="c")
        z = (x * y + c) * c + x
        order = topological_sort(z)
        res = forward_pass(order)
        backward_pass(order)

    def p(*parts: object) -> None:
        print(*parts, file=stream)

    p("Node ordering:")
    for node in order:
        p(node)
    p("-" * 10)
    p(f"Forward pass expected: {(val1 * val2 + val3) * val3 + val1}")
    p(f"Forward pass computed: {res}")
    p(f"dz/dx expected = {val3 * val2 + 1}")
    p(f"dz/dx computed = {x.gradient}")
    p(f"dz/dy expected = {val1 * val3}")
    p(f"dz/dy computed = {y.gradient}")
    p(f"dz/dc expected = {val1 * val2 + 2 * val3}")
    p(f"dz/dc computed = {c.gradient}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written, note = _write_graph(
        z, out_dir, "seed-graph", "z = (x*y + c)*c + x", highlight=False, tools=tools
    )
    p(f"graph written to {written[0]}")
    if len(written) > 1:
        p(f"graph picture written to {written[1]}")
    return written, note


@dataclass
class TrainResult:
    """What a training run produced: per-step loss and accuracy, and the final graph."""

    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    loss_node: Node | None = None
    #: The training points and labels, and the trained network's class for points.
    features: np.ndarray[Any, Any] | None = None
    labels: np.ndarray[Any, Any] | None = None
    predict: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]] | None = None

    @property
    def accuracy(self) -> float:
        """Training accuracy at the last step."""
        return self.accuracies[-1] if self.accuracies else 0.0


def missing_ops() -> dict[str, str]:
    """Ops the training needs that no loaded plugin provides, with their distribution."""
    registry = get_registry()
    return {op: dist for op, dist in NEEDED_OPS.items() if op not in registry}


def train_spirals(
    stream: TextIO,
    *,
    steps: int = FULL["steps"],
    n_per_class: int = FULL["n_per_class"],
    hidden: int = 32,
    lr: float = 0.02,
    seed: int = 0,
    progress: Progress | None = None,
    checkpoint: tuple[Path, int] | None = None,
) -> TrainResult:
    """Train a 2-hidden-layer tanh MLP on two spirals with Adam; report progress.

    Progress goes to ``progress``, by default a tqdm bar on ``stream`` (plain lines
    without tqdm). ``checkpoint=(path, step)`` saves the training after that step.
    """
    rng = np.random.default_rng(seed)
    features, labels = two_spirals(n_per_class, rng)
    with Graph():
        x = Placeholder(name="x", shape=(None, 2))
        t = Placeholder(name="labels", dtype=np.int64, shape=(None,))
        params, logits, loss = mlp(x, t, rng, hidden)
    order = topological_sort(loss)
    opt = Adam(params, lr=lr)
    feed = {x: features, t: labels}
    result = TrainResult(loss_node=loss, features=features, labels=labels,
                         predict=lambda pts: np.argmax(evaluate(logits, {x: pts}), axis=1))
    bar = make_progress(steps, stream) if progress is None else progress
    try:
        for step in range(1, steps + 1):
            opt.zero_grad()
            value = forward_pass(order, feed)
            backward_pass(order)
            opt.step()
            if checkpoint is not None and step == checkpoint[1]:
                write_checkpoint(checkpoint[0], loss, opt, step,
                                 {"x": features, "labels": labels})
            accuracy = float(np.mean(np.argmax(logits.value, axis=1) == labels))
            result.losses.append(float(value))
            result.accuracies.append(accuracy)
            bar.update(step, float(value), accuracy)
    finally:
        bar.close()
    # Leave the graph showing the trained parameters' values and gradients.
    forward_pass(order, feed)
    backward_pass(order)
    return result


def run_demo(
    out_dir: Path,
    stream: TextIO,
    *,
    epochs: int | None = None,
    quick: bool = False,
    train: bool = True,
    dask: bool = False,
    checkpoint: bool = True,
) -> int:
    """The whole demo: worked example, then training and pictures; the exit code.

    ``checkpoint``: save the training half-way (``checkpoint.adg``) and resume it in a
    fresh process, checking that the resumed steps' losses are the same bit for bit.

    ``dask``: the training runs data-parallel on a Dask ``LocalCluster`` instead (a few
    steps, the loss printed; no pictures of it).
    """
    if dask and train and (reason := dask_missing()):
        print(reason, file=stream)
        return 1
    tools = available_tools()
    written, note = _seed_example(out_dir, stream, tools)
    graph_notes = _graph_notes(tools) + ([note] if note else [])
    if not train:
        _print_notes(graph_notes, stream)
        return 0
    missing = missing_ops()
    if missing:
        dists = sorted(set(missing.values()))
        print(
            f"cannot train: no plugin provides {', '.join(sorted(missing))}; install "
            f"{' and '.join(dists)} (make demo installs them)",
            file=stream,
        )
        _print_notes(graph_notes, stream)
        return 1
    if dask:
        _print_notes(graph_notes, stream)
        return run_dask(stream, epochs, quick)
    return _train_and_write(out_dir, stream, tools, epochs, quick, written, graph_notes,
                            checkpoint)


def _train_and_write(out_dir: Path, stream: TextIO, tools: Tools, epochs: int | None,
                     quick: bool, written: list[Path], notes: list[str],
                     checkpoint: bool) -> int:
    """The NumPy training, its pictures and charts, and the notes on what is missing."""
    budget = dict(QUICK if quick else FULL)
    if epochs is not None:
        budget["steps"] = epochs
    print("-" * 10, file=stream)
    print(
        f"Training an MLP (2-32-32-2, tanh) on {2 * budget['n_per_class']} two-spirals "
        f"points, {budget['steps']} Adam steps:",
        file=stream,
    )
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = (out_dir / "checkpoint.adg", budget["steps"] // 2 if checkpoint else 0)
    result = train_spirals(
        stream,
        steps=budget["steps"],
        n_per_class=budget["n_per_class"],
        progress=make_progress(budget["steps"], stream, use_tqdm=tools.tqdm),
        checkpoint=ckpt if ckpt[1] > 0 else None,
    )
    seconds = time.perf_counter() - start
    print(
        f"final loss {result.losses[-1]:.4f}, training accuracy "
        f"{100 * result.accuracy:.1f}% ({seconds:.1f} s)",
        file=stream,
    )
    resumed = ckpt[1] <= 0 or _check_resume(ckpt[0], ckpt[1], result.losses, stream)
    more, note = _write_outputs(out_dir, result, tools)
    if ckpt[1] > 0:
        more.insert(0, ckpt[0])
    written = written + more
    print(f"wrote to {out_dir}/: {', '.join(p.name for p in written)}", file=stream)
    notes = notes + ([note] if note and note not in notes else [])
    if not tools.matplotlib:
        notes.append(_NOTE_MATPLOTLIB)
    if not tools.tqdm:
        notes.append(_NOTE_TQDM)
    _print_notes(notes, stream)
    return 0 if resumed else 1




def _check_resume(path: Path, step: int, losses: list[float], stream: TextIO) -> bool:
    """Resume the checkpoint in a fresh process and say whether it matches exactly."""
    rest = resume_in_fresh_process(path, len(losses) - step)
    same = rest == losses[step:]
    print(
        f"checkpoint of step {step} ({path.name}: graph, Adam state, data) resumed in a "
        f"fresh process: steps {step + 1}-{len(losses)} "
        + ("give the same losses, bit for bit" if same else "DIFFER from the run above"),
        file=stream,
    )
    return same


def _print_notes(notes: list[str], stream: TextIO) -> None:
    for note in notes:
        print(note, file=stream)


def _write_outputs(
    out_dir: Path, result: TrainResult, tools: Tools
) -> tuple[list[Path], str | None]:
    """The trained graph (DOT, SVG) and the curves (CSV, charts); a note if rendering failed."""
    assert result.loss_node is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    title = "two-spirals MLP, mean softmax cross-entropy (fill: gradient magnitude)"
    written, note = _write_graph(
        result.loss_node, out_dir, "mlp-graph", title, highlight=True, tools=tools
    )
    written.append(write_curves_csv(out_dir / "curves.csv", result.losses, result.accuracies))
    if tools.matplotlib:
        charts = draw_curves(out_dir / "curves", result.losses, result.accuracies,
                             title="two spirals: MLP 2-32-32-2 trained with Adam")
        written += charts or []
        assert result.predict is not None and result.features is not None
        assert result.labels is not None
        written += draw_decision_regions(
            out_dir / "decision-regions", result.predict, result.features, result.labels,
            title="two spirals: the trained MLP's decision regions") or []
    return written, note
