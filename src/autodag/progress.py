"""Training progress: a tqdm bar when tqdm is installed, plain lines without it."""

from __future__ import annotations

import importlib
from typing import Any, Protocol, TextIO

__all__ = ["Progress", "ProgressLines", "make_progress"]


class Progress(Protocol):
    """What the training reports each step to."""

    def update(self, step: int, loss: float, accuracy: float) -> None:
        """Step ``step`` (1-based) is done, with its loss and accuracy (0..1)."""

    def close(self) -> None:
        """The last step is done."""


class ProgressLines:
    """Plain progress lines, about ten per run: the fallback when tqdm is missing.

    Whole lines only, no carriage returns, so that a log file reads as well as a terminal.
    """

    def __init__(self, total: int, stream: TextIO, lines: int = 10) -> None:
        self.total = total
        self.stream = stream
        self.every = max(1, total // lines)

    def update(self, step: int, loss: float, accuracy: float) -> None:
        """Print a line every ``total // lines`` steps and at the last one."""
        if step % self.every and step != self.total:
            return
        self.stream.write(
            f"step {step:>{len(str(self.total))}}/{self.total} "
            f"({100 * step / self.total:3.0f}%) loss {loss:.4f} "
            f"accuracy {100 * accuracy:5.1f}%\n"
        )
        self.stream.flush()

    def close(self) -> None:
        """Nothing to finish: every line is complete."""


class _TqdmProgress:
    """A tqdm bar (a widget in notebooks, through ``tqdm.auto``) with loss and accuracy."""

    def __init__(self, tqdm: Any, total: int, stream: TextIO) -> None:
        self.bar = tqdm(total=total, file=stream, unit="step", desc="training")

    def update(self, step: int, loss: float, accuracy: float) -> None:
        """Advance by one step; the postfix shows the step's loss and accuracy."""
        self.bar.set_postfix_str(f"loss {loss:.4f} accuracy {100 * accuracy:5.1f}%",
                                 refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        """Draw the bar's final state and end its line."""
        self.bar.close()


def make_progress(total: int, stream: TextIO, *, use_tqdm: bool = True) -> Progress:
    """A tqdm bar when tqdm is installed (and ``use_tqdm``), else plain progress lines."""
    if use_tqdm:
        try:
            # By name: tqdm ships no type information. The package first, so that its
            # absence is seen even when tqdm.auto was imported before.
            importlib.import_module("tqdm")
            auto = importlib.import_module("tqdm.auto")
        except ImportError:
            pass
        else:
            return _TqdmProgress(auto.tqdm, total, stream)
    return ProgressLines(total, stream)
