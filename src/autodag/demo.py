"""The ``autodag demo`` command: the tutorial's worked example, then a network trained.

The training part fits a small MLP classifier to a synthetic two-spirals data set (fixed
seed, nothing downloaded) with Adam, full batch, and writes the graph picture (gradient
magnitudes highlighted) and a loss curve to the output folder. Its ops come from the
first-party plugins: ``tanh`` (autodag-math), ``mean`` (autodag-array) and
``softmax_cross_entropy`` (autodag-nn).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

import numpy as np

from . import ops
from ._png import BLUE, ORANGE, line_chart, write_png
from .execute import backward_pass, forward_pass, topological_sort
from .graph import Graph
from .nodes import Constant, Node, Placeholder, Variable
from .optim import Adam
from .registry import get_registry
from .viz import GraphvizMissingError, render, to_dot

__all__ = [
    "TrainResult",
    "run_demo",
    "seed_example",
    "train_spirals",
    "two_spirals",
]

#: Ops the training needs, and the plugin distribution providing each.
NEEDED_OPS: Final = {
    "tanh": "autodag-math",
    "mean": "autodag-array",
    "softmax_cross_entropy": "autodag-nn",
}
FULL: Final = {"n_per_class": 200, "steps": 800}
QUICK: Final = {"n_per_class": 100, "steps": 150}
_GRAPHVIZ_NOTE: Final = (
    "note: Graphviz not found, so graph pictures were written as DOT text; "
    "for SVG: pip install 'autodag[viz]' and install Graphviz (e.g. apt-get install graphviz)"
)


def seed_example(out_dir: Path, stream: TextIO) -> Path:
    """Build z = (x*y + c)*c + x, print ordering, value and gradients; write the DOT file.

    Also writes ``seed-graph.svg`` when Graphviz is installed.
    """
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
    path = out_dir / "seed-graph.dot"
    title = "z = (x*y + c)*c + x"
    path.write_text(to_dot(z, title=title), encoding="utf-8")
    p(f"graph written to {path}")
    svg = _picture(z, out_dir / "seed-graph.svg", title, highlight=False)
    if svg is not None:
        p(f"graph picture written to {svg}")
    return path


def _picture(node: Node, path: Path, title: str, *, highlight: bool) -> Path | None:
    """Render ``node``'s graph to ``path``; None when Graphviz is not installed."""
    try:
        return render(node, path, title=title, highlight=highlight)
    except GraphvizMissingError:
        return None


def two_spirals(
    n_per_class: int, rng: np.random.Generator, *, turns: float = 2.0, noise: float = 0.03
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.int64]]]:
    """Points on two interleaved spirals (radius up to 1) and their class, 0 or 1."""
    t = np.sqrt(rng.uniform(0.0, 1.0, n_per_class)) * turns * 2 * np.pi
    r = t / (turns * 2 * np.pi)
    arm = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    x = np.concatenate([arm, -arm]) + rng.normal(0.0, noise, (2 * n_per_class, 2))
    y = np.concatenate([np.zeros(n_per_class, np.int64), np.ones(n_per_class, np.int64)])
    return x, y


@dataclass
class TrainResult:
    """What a training run produced: per-step loss and accuracy, and the final graph."""

    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    loss_node: Node | None = None

    @property
    def accuracy(self) -> float:
        """Training accuracy at the last step."""
        return self.accuracies[-1] if self.accuracies else 0.0


class ProgressBar:
    """A one-line progress bar with the loss; redrawn in place on a terminal."""

    def __init__(self, total: int, stream: TextIO, width: int = 30) -> None:
        self.total = total
        self.stream = stream
        self.width = width
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        # A terminal gets ~100 redraws; a log file ten lines.
        self.every = max(1, total // (100 if self.tty else 10))

    def update(self, step: int, loss: float, accuracy: float) -> None:
        """Show step ``step`` (1-based) of ``total``."""
        if step % self.every and step != self.total:
            return
        filled = round(self.width * step / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        line = (
            f"[{bar}] {100 * step / self.total:3.0f}% step {step:>{len(str(self.total))}}/"
            f"{self.total} loss {loss:.4f} accuracy {100 * accuracy:5.1f}%"
        )
        if self.tty:
            self.stream.write("\r" + line + ("\n" if step == self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


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
) -> TrainResult:
    """Train a 2-hidden-layer tanh MLP on two spirals with Adam; report progress."""
    rng = np.random.default_rng(seed)
    features, labels = two_spirals(n_per_class, rng)
    with Graph():
        x = Placeholder(name="x", shape=(None, 2))
        t = Placeholder(name="labels", dtype=np.int64, shape=(None,))

        def layer(n_in: int, n_out: int, gain: float, k: int) -> tuple[Variable, Variable]:
            w = Variable(rng.normal(0.0, gain / np.sqrt(n_in), (n_in, n_out)), name=f"W{k}")
            return w, Variable(np.zeros(n_out), name=f"b{k}")

        # A wide first layer (gain 3) gives the tanh units the many turns of the spirals.
        w1, b1 = layer(2, hidden, 3.0, 1)
        w2, b2 = layer(hidden, hidden, 1.0, 2)
        w3, b3 = layer(hidden, 2, 1.0, 3)
        h1 = ops.tanh(x @ w1 + b1, name="h1")
        h2 = ops.tanh(h1 @ w2 + b2, name="h2")
        logits = h2 @ w3 + b3
        loss = ops.mean(ops.softmax_cross_entropy(logits, t), name="loss")
    order = topological_sort(loss)
    opt = Adam([w1, b1, w2, b2, w3, b3], lr=lr)
    feed = {x: features, t: labels}
    result = TrainResult(loss_node=loss)
    bar = ProgressBar(steps, stream)
    for step in range(1, steps + 1):
        opt.zero_grad()
        value = forward_pass(order, feed)
        backward_pass(order)
        opt.step()
        accuracy = float(np.mean(np.argmax(logits.value, axis=1) == labels))
        result.losses.append(float(value))
        result.accuracies.append(accuracy)
        bar.update(step, float(value), accuracy)
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
) -> int:
    """The whole demo: worked example, then training and pictures; the exit code."""
    seed_example(out_dir, stream)
    if not train:
        return 0
    missing = missing_ops()
    if missing:
        dists = sorted(set(missing.values()))
        print(
            f"cannot train: no plugin provides {', '.join(sorted(missing))}; install "
            f"{' and '.join(dists)} (make demo installs them)",
            file=stream,
        )
        return 1
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
    result = train_spirals(stream, steps=budget["steps"], n_per_class=budget["n_per_class"])
    seconds = time.perf_counter() - start
    print(
        f"final loss {result.losses[-1]:.4f}, training accuracy "
        f"{100 * result.accuracy:.1f}% ({seconds:.1f} s)",
        file=stream,
    )
    written = _write_outputs(out_dir, result, stream)
    print(f"wrote to {out_dir}/: {', '.join(p.name for p in written)}", file=stream)
    return 0


def _write_outputs(out_dir: Path, result: TrainResult, stream: TextIO) -> list[Path]:
    assert result.loss_node is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    written = sorted(out_dir.glob("seed-graph.*"))
    title = "two-spirals MLP, mean softmax cross-entropy (fill: gradient magnitude)"
    pic = _picture(result.loss_node, out_dir / "mlp-graph.svg", title, highlight=True)
    if pic is None:
        pic = out_dir / "mlp-graph.dot"
        pic.write_text(to_dot(result.loss_node, title=title, highlight=True), encoding="utf-8")
        print(_GRAPHVIZ_NOTE, file=stream)
    written.append(pic)
    chart = line_chart(
        [("loss", result.losses, BLUE), ("accuracy", result.accuracies, ORANGE)],
        title="two spirals",
    )
    written.append(write_png(out_dir / "loss.png", chart))
    return written
