"""split and array_split: a Python list of nodes, one ``getitem`` (a slice) each.

An op has one output, so ``autodag_array.split(x, 3)`` (and ``numpy.split(x, 3)`` on a
node) returns ``[x[0:2], x[2:4], x[4:6]]`` as getitem nodes. Each piece's gradient is
getitem's (scatter_add), and the engine sums the pieces' gradients into ``x``. Split
points (a sequence) need no shape; a number of sections needs the length of the axis,
which is inferred statically from the graph (``autodag.shapes.StaticShapes``). The ops
``split`` and ``array_split`` are one piece each (``section``): what NumPy's functions
dispatch to, and a piece's op for ``autodag.ops``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

import autodag as ad
from autodag import REQUIRED, Node, OpDef, Sample, ShapeMismatchError
from autodag.axes import is_axis_int
from autodag.shapes import StaticShapes

from .indexing import _getitem

__all__ = ["ARRAY_SPLIT", "SPLIT", "array_split", "split"]


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


def _section_index(ary: Any, sections: Any, axis: Any, section: Any,
                   equal: bool) -> tuple[Any, ...]:
    if not is_axis_int(axis):
        raise ShapeMismatchError(f"split: axis must be an int, got {axis!r}")
    bounds = _bounds(ary, sections, int(axis), equal)
    count = len(bounds) - 1
    if not (isinstance(section, (int, np.integer)) and -count <= section < count):
        raise ShapeMismatchError(f"split: section {section!r} is not one of the {count} "
                                 f"pieces of a split by {sections!r}")
    k = int(section) % count
    return _piece(int(axis), bounds[k], bounds[k + 1])


def _piece_op(equal: bool) -> OpDef:
    name = "split" if equal else "array_split"

    def forward(ary: Any, indices_or_sections: Any, axis: Any, section: Any) -> Any:
        return _getitem(ary, _section_index(ary, indices_or_sections, axis, section, equal))

    def vjp(xp: Any, g: Any, out: Any, ary: Any, indices_or_sections: Any, axis: Any,
            section: Any) -> Any:
        index = _section_index(ary, indices_or_sections, axis, section, equal)
        return xp.scatter_add(g, ary, index=index)

    def numpy_function(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
        return _split(ary, indices_or_sections, axis, equal)

    def samples(rng: np.random.Generator) -> list[Sample]:
        x = rng.standard_normal((6, 5))
        pieces = [(2, 0, 1), ((1, 4), 0, 2), ((2,), -1, 0)]
        if not equal:
            pieces += [(4, 0, 3), (3, 1, 2)]
        return [Sample((x,), {"indices_or_sections": n, "axis": ax, "section": k})
                for n, ax, k in pieces]

    return OpDef(
        name=name, arity=1, forward=forward, backward=(vjp,), input_names=("ary",),
        attributes={"indices_or_sections": REQUIRED, "axis": 0, "section": 0},
        samples=samples, array_api=True, numpy_function=numpy_function,
        doc=f"Piece number `section` of numpy.{name}; numpy.{name} on a node gives "
            "the list of every piece (getitem nodes).",
    )


SPLIT: Final = _piece_op(equal=True)
ARRAY_SPLIT: Final = _piece_op(equal=False)
