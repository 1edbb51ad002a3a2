"""The tutorial's worked example, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from .execute import backward_pass, forward_pass, topological_sort
from .graph import Graph
from .nodes import Constant, Variable
from .viz import to_dot

__all__ = ["seed_example"]


def seed_example(out_dir: Path, stream: TextIO) -> Path:
    """Build z = (x*y + c)*c + x, print ordering, value and gradients; write the DOT file."""
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
    path.write_text(to_dot(z, title="z = (x*y + c)*c + x"), encoding="utf-8")
    p(f"graph written to {path}")
    return path
