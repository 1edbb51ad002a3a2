"""ONNX converters of the array ops that pick elements: indexing, take, repeat, tile,
split, take_along_axis, and their gradients; sort, argsort and median (TopK). No import
of onnx here.

An op that picks elements by a static index is a Gather of its flat input at positions
computed with NumPy from the static shape (the op's own ``_POSITIONS``), its gradient a
ScatterElements adding into zeros. Basic indexing (ints, slices, None, Ellipsis) is a
Slice instead; take_along_axis, whose indices are an input, a GatherElements.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from .gather import _POSITIONS

if TYPE_CHECKING:
    from autodag.onnx import Context

__all__ = ["GATHER_CONVERTERS", "MAX_INDEX", "MIN_INDEX", "Converter", "flat", "slice_along",
           "static_shape"]

Converter = Callable[["Context"], str]
MIN_INDEX: Final = -(2**63)
MAX_INDEX: Final = 2**63 - 1


def static_shape(ctx: Context, i: int) -> tuple[int, ...]:
    """Input ``i``'s shape, or an ExportError when a dimension is symbolic or unknown."""
    shape = ctx.shape(i)
    if shape is None or None in shape:
        raise ctx.fail(f"input {i} needs a static shape, not {shape}")
    return tuple(int(d) for d in shape if d is not None)


def flat(ctx: Context, x: str) -> str:
    """``x`` as a 1-D value."""
    return ctx.op("Reshape", [x, ctx.ints([-1])])


def slice_along(ctx: Context, x: str, starts: Sequence[int], ends: Sequence[int],
                axes: Sequence[int], steps: Sequence[int]) -> str:
    """ONNX Slice of ``x`` with constant starts, ends, axes and steps."""
    return ctx.op("Slice", [x, ctx.ints(starts), ctx.ints(ends), ctx.ints(axes),
                            ctx.ints(steps)])


def _getitem(ctx: Context) -> str:
    index = ctx.attrs["index"]
    parts = index if isinstance(index, tuple) else (index,)
    shape = static_shape(ctx, 0)
    if any(isinstance(p, (list, np.ndarray)) for p in parts):
        return _gathered(lambda shape, index: _arange(shape)[index])(ctx)
    if any(p is Ellipsis for p in parts):
        k = parts.index(Ellipsis)
        fill = len(shape) - sum(p is not None and p is not Ellipsis for p in parts)
        parts = (*parts[:k], *(slice(None),) * fill, *parts[k + 1:])
    x = ctx.inputs[0]
    starts: list[int] = []
    ends: list[int] = []
    axes: list[int] = []
    steps: list[int] = []
    squeeze: list[int] = []
    new: list[int] = []
    axis = out = 0
    for p in parts:
        if p is None:
            new.append(out)
            out += 1
            continue
        dim = shape[axis]
        if isinstance(p, slice):
            start, stop, step = p.indices(dim)
            stop = MIN_INDEX if step < 0 and stop < 0 else stop
            out += 1
        else:
            start = int(p) % dim if dim else int(p)
            stop, step = start + 1, 1
            squeeze.append(axis)
        starts.append(start)
        ends.append(stop)
        axes.append(axis)
        steps.append(step)
        axis += 1
    if axes:
        x = slice_along(ctx, x, starts, ends, axes, steps)
    if squeeze:
        x = ctx.op("Squeeze", [x, ctx.ints(squeeze)])
    if new:
        x = ctx.op("Unsqueeze", [x, ctx.ints(new)])
    return x if x != ctx.inputs[0] else ctx.op("Identity", [x])


def _along_shapes(ctx: Context, ax: int) -> tuple[list[int], list[int]]:
    """The shapes take_along_axis broadcasts its array and indices to (not along ax)."""
    a, i = static_shape(ctx, 0), static_shape(ctx, 1)
    both = np.broadcast_shapes(_at(a, ax, 1), _at(i, ax, 1))
    return list(_at(both, ax, a[ax])), list(_at(both, ax, i[ax]))


def _at(shape: Sequence[int], ax: int, value: int) -> tuple[int, ...]:
    """``shape`` with axis ``ax`` set to ``value``."""
    return (*shape[:ax], value, *shape[ax + 1:])


def _take_along_axis(ctx: Context) -> str:
    x, axis = ctx.inputs[0], ctx.attrs["axis"]
    idx = ctx.input(1, "int64")
    if axis is None:
        return ctx.op("GatherElements", [flat(ctx, x), idx], axis=0)
    ax = ctx.axes(axis)[0]
    xs, ids = _along_shapes(ctx, ax)
    x, idx = ctx.op("Expand", [x, ctx.ints(xs)]), ctx.op("Expand", [idx, ctx.ints(ids)])
    return ctx.op("GatherElements", [x, idx], axis=ax)


def _put_along_axis_add(ctx: Context) -> str:
    like = static_shape(ctx, 2)
    axis = ctx.attrs["axis"]
    g, idx = ctx.input(0), ctx.input(1, "int64")
    if axis is None:
        zeros = ctx.constant(np.zeros(math.prod(like)), ctx.out_dtype)
        out = ctx.op("ScatterElements", [zeros, flat(ctx, idx), flat(ctx, g)], axis=0,
                     reduction="add")
        return ctx.op("Reshape", [out, ctx.ints(like)])
    ax = ctx.axes(axis, len(like))[0]
    full = _at(np.broadcast_shapes(like, _at(static_shape(ctx, 1), ax, 1)), ax, like[ax])
    ids = _at(full, ax, static_shape(ctx, 1)[ax])
    idx, g = ctx.op("Expand", [idx, ctx.ints(ids)]), ctx.op("Expand", [g, ctx.ints(ids)])
    zeros = ctx.constant(np.zeros(full), ctx.out_dtype)
    out = ctx.op("ScatterElements", [zeros, idx, g], axis=ax, reduction="add")
    summed = [k for k, (f, n) in enumerate(zip(full, like, strict=True)) if f != n]
    return ctx.reduce("ReduceSum", out, summed, True) if summed else out


def _arange(shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    return np.arange(math.prod(shape), dtype=np.int64).reshape(shape)


Positions = Callable[..., Any]


def _gathered(positions: Positions) -> Converter:
    """An op that picks elements of its input: a Gather of the flat input at the
    positions ``positions(shape, **attrs)`` computes from the static shape."""

    def convert(ctx: Context) -> str:
        pos = np.asarray(positions(static_shape(ctx, 0), **ctx.attrs), dtype=np.int64)
        return ctx.op("Gather", [flat(ctx, ctx.inputs[0]), ctx.constant(pos)], axis=0)

    return convert


def _scattered(positions: Positions) -> Converter:
    """The gradient of a ``_gathered`` op: g added onto the positions it was picked
    from (negative ones, pad's constants, dropped)."""

    def convert(ctx: Context) -> str:
        shape = static_shape(ctx, 1)
        pos = np.asarray(positions(shape, **ctx.attrs), dtype=np.int64)
        g = flat(ctx, ctx.op("Expand", [ctx.input(0), ctx.ints(pos.shape)]))
        keep = pos.reshape(-1) >= 0
        if not keep.all():
            g = ctx.op("Gather", [g, ctx.constant(np.flatnonzero(keep))], axis=0)
        zeros = ctx.constant(np.zeros(math.prod(shape)), ctx.out_dtype)
        out = ctx.op("ScatterElements", [zeros, ctx.constant(pos.reshape(-1)[keep]), g],
                     axis=0, reduction="add")
        return ctx.op("Reshape", [out, ctx.ints(shape)])

    return convert


def _piece(split: Callable[..., Any]) -> Positions:
    def positions(shape: tuple[int, ...], indices_or_sections: Any, axis: int,
                  section: int) -> Any:
        return split(_arange(shape), indices_or_sections, axis)[section]

    return positions


def _median(ctx: Context) -> str:
    axis, keep = ctx.attrs["axis"], bool(ctx.attrs["keepdims"])
    x, shape = ctx.input(0), static_shape(ctx, 0)
    if axis is None:
        x, ax, n = flat(ctx, x), 0, math.prod(shape)
    elif isinstance(axis, (int, np.integer)):
        ax = ctx.axes(axis)[0]
        n = shape[ax]
    else:
        raise ctx.fail("median over several axes has no converter")
    top = ctx.op_n("TopK", [x, ctx.ints([n])], 2, axis=ax, largest=0, sorted=1)[0]
    mid = slice_along(ctx, top, [(n - 1) // 2], [n // 2 + 1], [ax], [1])
    out = ctx.reduce("ReduceMean", mid, [ax], True)
    if axis is None:
        return ctx.op("Reshape", [out, ctx.ints([1] * len(shape) if keep else [])])
    return out if keep else ctx.op("Squeeze", [out, ctx.ints([ax])])


def _sorted(which: int) -> Converter:
    def convert(ctx: Context) -> str:
        x, axis = ctx.inputs[0], ctx.attrs["axis"]
        if axis is None:
            x, ax, dim = flat(ctx, x), 0, math.prod(static_shape(ctx, 0))
        else:
            ax = ctx.axes(axis)[0]
            dim = static_shape(ctx, 0)[ax]
        outs = ctx.op_n("TopK", [x, ctx.ints([dim])], 2, axis=ax, largest=0, sorted=1)
        return outs[which]

    return convert


GATHER_CONVERTERS: Final[dict[str, Converter]] = {
    "median": _median,
    "sort": _sorted(0),
    "argsort": _sorted(1),
    "getitem": _getitem,
    "take": _gathered(_POSITIONS["take"]),
    "take_grad": _scattered(_POSITIONS["take"]),
    "repeat": _gathered(_POSITIONS["repeat"]),
    "repeat_grad": _scattered(_POSITIONS["repeat"]),
    "tile_grad": _scattered(_POSITIONS["tile"]),
    "pad_grad": _scattered(_POSITIONS["pad"]),
    "scatter_add": _scattered(lambda shape, index: _arange(shape)[index]),
    "put_along_axis_add": _put_along_axis_add,
    "split": _gathered(_piece(np.split)),
    "array_split": _gathered(_piece(np.array_split)),
    "take_along_axis": _take_along_axis,
    "tile": _gathered(_POSITIONS["tile"]),
}
