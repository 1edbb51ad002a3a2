"""ONNX converters of the array ops (``autodag_onnx_converters``); no import of onnx here.

Reductions, statistics, shape ops, concatenation and its gradient helpers, cumulative
sums and products; indexing, sorting and the other ops that pick elements are in
:mod:`.onnx_gather`. Without a converter (ONNX has no op, or the op depends on index
arithmetic ONNX cannot state statically): median_weights; median over several axes.
cumprod and prod_others are unrolled along their axes (a Mul or two per element).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

import autodag

from .onnx_gather import (
    GATHER_CONVERTERS,
    MAX_INDEX,
    MIN_INDEX,
    Converter,
    flat,
    slice_along,
    static_shape,
)
from .statistics import _normalised

if TYPE_CHECKING:
    from autodag.onnx import Context

__all__ = ["CONVERTERS", "autodag_onnx_converters"]


def _axes(ctx: Context) -> tuple[int, ...]:
    return ctx.axes(ctx.attrs["axis"])


def _reduce(op_type: str) -> Converter:
    def convert(ctx: Context) -> str:
        return ctx.reduce(op_type, ctx.input(0), _axes(ctx), bool(ctx.attrs["keepdims"]))

    return convert


def _ptp(ctx: Context) -> str:
    x, axes, keep = ctx.input(0), _axes(ctx), bool(ctx.attrs["keepdims"])
    return ctx.op("Sub", [ctx.reduce("ReduceMax", x, axes, keep),
                          ctx.reduce("ReduceMin", x, axes, keep)])


def _count(ctx: Context, axes: Sequence[int], i: int = 0) -> int:
    shape = static_shape(ctx, i)
    return math.prod(shape[a] for a in axes)


def _var(sqrt: bool) -> Converter:
    def convert(ctx: Context) -> str:
        x, axes, keep = ctx.input(0), _axes(ctx), bool(ctx.attrs["keepdims"])
        d = ctx.op("Sub", [x, ctx.reduce("ReduceMean", x, axes, True)])
        s = ctx.reduce("ReduceSum", ctx.op("Mul", [d, d]), axes, keep)
        n = _count(ctx, axes) - ctx.attrs["ddof"]
        v = ctx.op("Div", [s, ctx.constant(n, ctx.out_dtype)])
        return ctx.op("Sqrt", [v]) if sqrt else v

    return convert


def _average(ctx: Context) -> str:
    w, x = ctx.attrs["weights"], ctx.input(0)
    if w is None:
        return ctx.reduce("ReduceMean", x, _axes(ctx), False)
    wn = ctx.constant(_normalised(w, static_shape(ctx, 0), ctx.attrs["axis"]), ctx.out_dtype)
    return ctx.reduce("ReduceSum", ctx.op("Mul", [x, wn]), _axes(ctx), False)


def _average_grad(ctx: Context) -> str:
    w, axis = ctx.attrs["weights"], ctx.attrs["axis"]
    if w is None:
        return _mean_grad(ctx)
    shape = static_shape(ctx, 1)
    g = ctx.input(0)
    if axis is not None:
        g = ctx.op("Unsqueeze", [g, ctx.ints(ctx.axes(axis, len(shape)))])
    wn = ctx.constant(_normalised(w, shape, axis), ctx.out_dtype)
    return ctx.op("Expand", [ctx.op("Mul", [g, wn]), ctx.ints(shape)])


def _mean_grad(ctx: Context) -> str:
    axis, keep = ctx.attrs["axis"], ctx.attrs.get("keepdims", False)
    rank = len(static_shape(ctx, 1))
    axes = ctx.axes(axis, rank)
    g = ctx.input(0)
    if not (keep or axis is None) and axes:
        g = ctx.op("Unsqueeze", [g, ctx.ints(axes)])
    count = _count(ctx, axes, 1)
    part = ctx.op("Div", [g, ctx.constant(count or 1, ctx.out_dtype)])
    return ctx.op("Expand", [part, ctx.shape_of(ctx.inputs[1])])


def _max_weights(ctx: Context) -> str:
    x, axes = ctx.inputs[0], _axes(ctx)
    hit = ctx.op("Equal", [x, ctx.reduce("ReduceMax", x, axes, True)])
    hits = ctx.cast(hit, None, ctx.out_dtype)
    count = ctx.reduce("ReduceSum", hits, axes, True)
    return ctx.op("Div", [hits, ctx.op("Max", [count, ctx.constant(1, ctx.out_dtype)])])


def _arg(op_type: str) -> Converter:
    def convert(ctx: Context) -> str:
        x, axis, keep = ctx.inputs[0], ctx.attrs["axis"], bool(ctx.attrs["keepdims"])
        if axis is None:
            out = ctx.op(op_type, [flat(ctx, x)], axis=0, keepdims=0)
            if keep:
                out = ctx.op("Reshape", [out, ctx.ints([1] * ctx.rank(0))])
            return out
        return ctx.op(op_type, [x], axis=ctx.axes(axis)[0], keepdims=int(keep))

    return convert


def _reshape(ctx: Context) -> str:
    shape = ctx.attrs["shape"]
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return ctx.op("Reshape", [ctx.inputs[0], ctx.ints(shape)])


def _out_shape(ctx: Context) -> str:
    shape = ctx.out_shape
    if shape is None or None in shape:
        raise ctx.fail(f"the output needs a static shape, not {shape}")
    return ctx.ints(int(d) for d in shape if d is not None)


def _to_out_shape(ctx: Context) -> str:
    return ctx.op("Reshape", [ctx.inputs[0], _out_shape(ctx)])


def _transpose(ctx: Context) -> str:
    axes = ctx.attrs["axes"]
    perm = list(reversed(range(ctx.rank(0)))) if axes is None else [
        a % ctx.rank(0) for a in axes]
    return ctx.op("Transpose", [ctx.inputs[0]], perm=perm)


def _moveaxis(ctx: Context) -> str:
    r = ctx.rank(0)

    def norm(v: Any) -> list[int]:
        return [int(a) % r for a in ((v,) if isinstance(v, (int, np.integer)) else v)]

    src, dst = norm(ctx.attrs["source"]), norm(ctx.attrs["destination"])
    order = [n for n in range(r) if n not in src]
    for d, s in sorted(zip(dst, src, strict=True)):
        order.insert(d, s)
    return ctx.op("Transpose", [ctx.inputs[0]], perm=order)


def _broadcast_to(ctx: Context) -> str:
    shape = ctx.attrs["shape"]
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return ctx.op("Expand", [ctx.inputs[0], ctx.ints(shape)])


def _flip_axes(ctx: Context, x: str, axes: Sequence[int]) -> str:
    if not axes:
        return ctx.op("Identity", [x])
    k = len(axes)
    return slice_along(ctx, x, [-1] * k, [MIN_INDEX] * k, axes, [-1] * k)


def _flip(ctx: Context) -> str:
    return _flip_axes(ctx, ctx.inputs[0], _axes(ctx))


def _rot90(ctx: Context) -> str:
    x, r = ctx.inputs[0], ctx.rank(0)
    a0, a1 = (int(a) % r for a in ctx.attrs["axes"])
    k = int(ctx.attrs["k"]) % 4
    perm = list(range(r))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 0:
        return ctx.op("Identity", [x])
    if k == 2:
        return _flip_axes(ctx, x, sorted((a0, a1)))
    if k == 1:
        return ctx.op("Transpose", [_flip_axes(ctx, x, [a1])], perm=perm)
    return _flip_axes(ctx, ctx.op("Transpose", [x], perm=perm), [a1])


def _concatenate(ctx: Context) -> str:
    axis = ctx.attrs["axis"]
    parts = [ctx.input(i) for i in range(len(ctx.inputs))]
    if axis is None:
        return ctx.op("Concat", [flat(ctx, p) for p in parts], axis=0)
    return ctx.op("Concat", parts, axis=ctx.axes(axis)[0])


def _stack(ctx: Context) -> str:
    ax = ctx.axes(ctx.attrs["axis"], ctx.out_rank)[0]
    parts = [ctx.op("Unsqueeze", [ctx.input(i), ctx.ints([ax])])
             for i in range(len(ctx.inputs))]
    return ctx.op("Concat", parts, axis=ax)


def _part(ctx: Context) -> tuple[int | None, int, int, int]:
    """(axis or None for flat, start, stop, total) of like ``index`` in the concatenation."""
    likes = [static_shape(ctx, i) for i in range(1, len(ctx.inputs))]
    index, axis = int(ctx.attrs["index"]), ctx.attrs["axis"]
    if axis is None:
        sizes = [math.prod(s) for s in likes]
        ax = None
    else:
        ax = ctx.axes(axis, len(likes[0]))[0]
        sizes = [s[ax] for s in likes]
    start = sum(sizes[:index])
    return ax, start, start + sizes[index], sum(sizes)


def _concat_part(ctx: Context) -> str:
    ax, start, stop, _ = _part(ctx)
    g = ctx.input(0)
    if ax is None:
        piece = slice_along(ctx, g, [start], [stop], [0], [1])
        return ctx.op("Reshape", [piece, ctx.shape_of(ctx.inputs[1 + ctx.attrs["index"]])])
    return slice_along(ctx, g, [start], [stop], [ax], [1])


def _concat_pad(ctx: Context) -> str:
    ax, start, stop, total = _part(ctx)
    h = ctx.input(0)
    if ax is None:
        h, ax, rank = flat(ctx, h), 0, 1
    else:
        rank = ctx.out_rank
    pads = [0] * (2 * rank)
    pads[ax], pads[rank + ax] = start, total - stop
    return ctx.op("Pad", [h, ctx.ints(pads), ctx.constant(0, ctx.out_dtype)])


def _cumprod(ctx: Context) -> str:
    x, axis = ctx.input(0), ctx.attrs["axis"]
    shape = static_shape(ctx, 0)
    if axis is None:
        x, ax, n = flat(ctx, x), 0, math.prod(shape)
    else:
        ax = ctx.axes(axis)[0]
        n = shape[ax]
    if n == 0:
        return ctx.op("Identity", [x])
    parts = [slice_along(ctx, x, [0], [1], [ax], [1])]
    for k in range(1, n):
        parts.append(ctx.op("Mul", [parts[-1], slice_along(ctx, x, [k], [k + 1], [ax], [1])]))
    return ctx.op("Concat", parts, axis=ax)


def _prod_others(ctx: Context) -> str:
    """Each element's product of the others in its group: the group's axes moved last
    and flattened, then products of the elements before and after it (unrolled)."""
    x, shape = ctx.input(0), static_shape(ctx, 0)
    one = ctx.constant(1, ctx.out_dtype)
    if not shape:
        return ctx.op("Identity", [one])
    axes = ctx.axes(ctx.attrs["axis"])
    rest = [i for i in range(len(shape)) if i not in axes]
    perm = [*rest, *axes]
    m, last = math.prod(shape[a] for a in axes), len(rest)
    t = ctx.op("Reshape", [ctx.op("Transpose", [x], perm=perm),
                           ctx.ints([*(shape[i] for i in rest), m])])
    cols = [slice_along(ctx, t, [k], [k + 1], [last], [1]) for k in range(m)]
    before: list[str] = [one]
    for k in range(1, m):
        before.append(ctx.op("Mul", [before[-1], cols[k - 1]]))
    after: list[str] = [one]
    for k in range(m - 2, -1, -1):
        after.insert(0, ctx.op("Mul", [after[0], cols[k + 1]]))
    outs = [ctx.op("Expand", [ctx.op("Mul", [b, a]), ctx.shape_of(c)])
            for b, a, c in zip(before, after, cols, strict=True)]
    joined = ctx.op("Concat", outs, axis=last) if outs else t
    moved = ctx.op("Reshape", [joined, ctx.ints([shape[i] for i in perm])])
    inverse = sorted(range(len(shape)), key=lambda d: perm[d])
    return ctx.op("Transpose", [moved], perm=inverse)


def _cumsum(ctx: Context) -> str:
    x, axis = ctx.input(0), ctx.attrs["axis"]
    if axis is None:
        x, ax = flat(ctx, x), 0
    else:
        ax = ctx.axes(axis)[0]
    return ctx.op("CumSum", [x, ctx.constant(ax, np.int64)])


def _pad(ctx: Context) -> str:
    mode = ctx.attrs["mode"]
    if mode not in ("constant", "edge", "reflect"):
        raise ctx.fail(f"pad mode {mode!r} has no ONNX form")
    rank = ctx.rank(0)
    widths = np.broadcast_to(np.asarray(ctx.attrs["pad_width"], dtype=np.int64), (rank, 2))
    pads = [int(w) for w in widths[:, 0]] + [int(w) for w in widths[:, 1]]
    value = ctx.constant(ctx.attrs["constant_values"], ctx.out_dtype)
    inputs = [ctx.input(0), ctx.ints(pads)] + ([value] if mode == "constant" else [])
    return ctx.op("Pad", inputs, mode=mode)


def _roll(ctx: Context) -> str:
    shift, axis = ctx.attrs["shift"], ctx.attrs["axis"]
    x, shape = ctx.inputs[0], static_shape(ctx, 0)
    if axis is None:
        rolled = _roll_one(ctx, flat(ctx, x), math.prod(shape), int(shift), 0)
        return ctx.op("Reshape", [rolled, ctx.shape_of(x)])
    shifts = np.broadcast_to(np.asarray(shift), np.shape(axis)).reshape(-1)
    axes = np.asarray(axis).reshape(-1)
    for s, a in zip(shifts, axes, strict=True):
        ax = int(a) % len(shape)
        x = _roll_one(ctx, x, shape[ax], int(s), ax)
    return x if x != ctx.inputs[0] else ctx.op("Identity", [x])


def _roll_one(ctx: Context, x: str, dim: int, shift: int, ax: int) -> str:
    s = shift % dim if dim else 0
    if not s:
        return x
    tail = slice_along(ctx, x, [dim - s], [dim], [ax], [1])
    head = slice_along(ctx, x, [0], [dim - s], [ax], [1])
    return ctx.op("Concat", [tail, head], axis=ax)


def _diff(ctx: Context) -> str:
    x, ax = ctx.input(0), ctx.axes(ctx.attrs["axis"])[0]
    for _ in range(int(ctx.attrs["n"])):
        x = ctx.op("Sub", [slice_along(ctx, x, [1], [MAX_INDEX], [ax], [1]),
                           slice_along(ctx, x, [0], [-1], [ax], [1])])
    return x if x != ctx.inputs[0] else ctx.op("Identity", [x])


def _diff_grad(ctx: Context) -> str:
    """The transpose of diff: each step g -> pad(g, 1 before) - pad(g, 1 after)."""
    g, rank = ctx.input(0), ctx.rank(1)
    ax = ctx.axes(ctx.attrs["axis"], rank)[0]
    zero = ctx.constant(0, ctx.out_dtype)
    before, after = [0] * (2 * rank), [0] * (2 * rank)
    before[ax], after[rank + ax] = 1, 1
    for _ in range(int(ctx.attrs["n"])):
        g = ctx.op("Sub", [ctx.op("Pad", [g, ctx.ints(before), zero]),
                           ctx.op("Pad", [g, ctx.ints(after), zero])])
    return g if g != ctx.inputs[0] else ctx.op("Identity", [g])


def _identity(ctx: Context) -> str:
    return ctx.op("Identity", [ctx.inputs[0]])


CONVERTERS: Final[dict[str, Converter]] = {
    **GATHER_CONVERTERS,
    "sum": _reduce("ReduceSum"),
    "mean": _reduce("ReduceMean"),
    "max": _reduce("ReduceMax"),
    "min": _reduce("ReduceMin"),
    "prod": _reduce("ReduceProd"),
    "ptp": _ptp,
    "var": _var(False),
    "std": _var(True),
    "average": _average,
    "mean_grad": _mean_grad,
    "average_grad": _average_grad,
    "max_weights": _max_weights,
    "argmax": _arg("ArgMax"),
    "argmin": _arg("ArgMin"),
    "reshape": _reshape,
    "reshape_like": lambda ctx: ctx.op("Reshape", [ctx.inputs[0], ctx.shape_of(ctx.inputs[1])]),
    "ravel": lambda ctx: flat(ctx, ctx.inputs[0]),
    "atleast_1d": _to_out_shape,
    "atleast_2d": _to_out_shape,
    "atleast_3d": _to_out_shape,
    "transpose": _transpose,
    "moveaxis": _moveaxis,
    "broadcast_to": _broadcast_to,
    "flip": _flip,
    "rot90": _rot90,
    "concatenate": _concatenate,
    "stack": _stack,
    "concat_part": _concat_part,
    "concat_pad": _concat_pad,
    "cumprod": _cumprod,
    "prod_others": _prod_others,
    "cumsum": _cumsum,
    "pad": _pad,
    "roll": _roll,
    "diff": _diff,
    "diff_grad": _diff_grad,
    "stop_gradient": _identity,
}


@autodag.hookimpl
def autodag_onnx_converters() -> dict[str, Converter]:
    """The ONNX converters of the array ops."""
    return dict(CONVERTERS)
