"""split and array_split: a Python list of nodes, one ``getitem`` (a slice) each.

An op has one output, so these are functions that build several ops, not ops of their
own: ``autodag_array.split(x, 3)`` returns ``[x[0:2], x[2:4], x[4:6]]`` as getitem
nodes (``autodag.ops`` lists registered ops only). Each piece's gradient is getitem's
(scatter_add), and the engine sums the pieces' gradients into ``x``. Split points
(a sequence) need no shape; a number of sections needs the length of the axis, which
is inferred statically from the graph (``autodag.shapes.StaticShapes``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

import autodag as ad
from autodag import Node, ShapeMismatchError
from autodag.axes import is_axis_int
from autodag.shapes import StaticShapes

__all__ = ["array_split", "split"]


def _piece(ax: int, start: int | None, stop: int | None) -> tuple[Any, ...]:
    """An index slicing ``ax`` (negative counting from the end) without the rank."""
    part = slice(start, stop)
    if ax >= 0:
        return (slice(None),) * ax + (part,)
    return (Ellipsis, part) + (slice(None),) * (-ax - 1)


def _length(ary: Any, axis: int) -> int:
    shape = StaticShapes().require(ary, "to split into sections") if isinstance(
        ary, Node) else np.shape(ary)
    if not -len(shape) <= axis < len(shape):
        raise ShapeMismatchError(
            f"split: axis {axis} is out of range for an input of shape {tuple(shape)}")
    return int(shape[axis])


def _bounds(ary: Any, sections: Any, axis: int, equal: bool) -> list[int | None]:
    if isinstance(sections, (Sequence, np.ndarray)):
        return [0, *(int(i) for i in sections), None]
    n = int(sections)
    if n <= 0:
        raise ValueError("split: number of sections must be larger than 0")
    length = _length(ary, axis)
    if equal and length % n:
        raise ValueError(f"split: {length} elements along axis {axis} do not split "
                         f"into {n} equal sections (array_split allows unequal ones)")
    size, extra = divmod(length, n)
    out: list[int | None] = [0]
    for k in range(n):
        stop = out[-1]
        assert stop is not None
        out.append(stop + size + (k < extra))
    return out


def _split(ary: Any, sections: Any, axis: Any, equal: bool) -> list[Any]:
    if not is_axis_int(axis):
        raise ShapeMismatchError(f"split: axis must be an int, got {axis!r}")
    bounds = _bounds(ary, sections, int(axis), equal)
    return [ad.ops.getitem(ary, index=_piece(int(axis), a, b))
            for a, b in itertools.pairwise(bounds)]


def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """numpy.split as getitem nodes: equal sections (an int) or split points."""
    return _split(ary, indices_or_sections, axis, equal=True)


def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """numpy.array_split as getitem nodes: like split, sections may differ by one."""
    return _split(ary, indices_or_sections, axis, equal=False)
