"""ONNX converters of the built-in ops, given through ``autodag_onnx_converters``.

A converter takes the export context of one node (``autodag.onnx.Context``) and returns
the name of the ONNX value it computed. Nothing here imports ``onnx``: the context does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .onnx import Context

__all__ = ["CONVERTERS", "elementwise", "sum_to"]

Shape = Sequence[int | None] | None


def elementwise(op_type: str) -> Callable[[Context], str]:
    """The converter of an op that is the ONNX op ``op_type`` on inputs of its dtype."""

    def convert(ctx: Context) -> str:
        return ctx.elementwise(op_type)

    return convert


def _expand_dims(ctx: Context) -> str:
    axis = ctx.attrs["axis"]
    axes = ctx.axes(axis, ctx.out_rank)
    return ctx.op("Unsqueeze", [ctx.inputs[0], ctx.ints(axes)])


def _squeeze(ctx: Context) -> str:
    axis = ctx.attrs["axis"]
    if axis is None:
        shape = ctx.shape(0)
        if shape is None or None in shape:
            return ctx.op("Squeeze", [ctx.inputs[0]])
        axes = tuple(k for k, d in enumerate(shape) if d == 1)
    else:
        axes = ctx.axes(axis)
    if not axes:
        return ctx.op("Identity", [ctx.inputs[0]])
    return ctx.op("Squeeze", [ctx.inputs[0], ctx.ints(axes)])


def _swapaxes(ctx: Context) -> str:
    r = ctx.rank(0)
    perm = list(range(r))
    a, b = ctx.axes(ctx.attrs["axis1"])[0], ctx.axes(ctx.attrs["axis2"])[0]
    perm[a], perm[b] = perm[b], perm[a]
    return ctx.op("Transpose", [ctx.inputs[0]], perm=perm)


def sum_to(ctx: Context, g: str, g_shape: Shape, like: str, like_shape: Shape) -> str:
    """``g`` summed over the axes along which a value of ``like_shape`` was broadcast to
    ``g_shape``, and shaped as ``like`` (the engine's unbroadcast)."""
    if g_shape is None or like_shape is None:
        raise ctx.fail("summing a gradient to its input's shape needs both static shapes")
    lead = len(g_shape) - len(like_shape)
    axes = list(range(lead)) + [lead + k for k, d in enumerate(like_shape)
                                if d == 1 and g_shape[lead + k] != 1]
    if not axes:
        return g
    summed = ctx.reduce("ReduceSum", g, axes, keepdims=True)
    return ctx.op("Reshape", [summed, ctx.shape_of(like)])


def _unbroadcast(ctx: Context) -> str:
    g = ctx.input(0)
    out = sum_to(ctx, g, ctx.shape(0), ctx.inputs[1], ctx.shape(1))
    return out if out != g else ctx.op("Identity", [g])


def _broadcast_like(ctx: Context) -> str:
    return ctx.op("Expand", [ctx.input(0), ctx.shape_of(ctx.inputs[1])])


def _seed_like(ctx: Context) -> str:
    one = ctx.onnx.numpy_helper.from_array(ctx.out_dtype.type(1).reshape(1))
    return ctx.op("ConstantOfShape", [ctx.shape_of(ctx.inputs[0])], value=one)


def _log_or_zero(ctx: Context) -> str:
    a = ctx.input(0)
    zero = ctx.constant(0, ctx.out_dtype)
    is_zero = ctx.op("Equal", [a, zero])
    return ctx.op("Where", [is_zero, zero, ctx.op("Log", [a])])


def _power_base_grad(ctx: Context) -> str:
    a, b = ctx.input(0), ctx.input(1)
    dt = ctx.out_dtype
    zero, one = ctx.constant(0, dt), ctx.constant(1, dt)
    grad = ctx.op("Mul", [b, ctx.op("Pow", [a, ctx.op("Sub", [b, one])])])
    return ctx.op("Where", [ctx.op("Equal", [b, zero]), zero, grad])


CONVERTERS: Final[dict[str, Callable[[Context], str]]] = {
    "add": elementwise("Add"),
    "subtract": elementwise("Sub"),
    "multiply": elementwise("Mul"),
    "divide": elementwise("Div"),
    "power": elementwise("Pow"),
    "negate": elementwise("Neg"),
    "matmul": elementwise("MatMul"),
    "expand_dims": _expand_dims,
    "squeeze": _squeeze,
    "swapaxes": _swapaxes,
    "unbroadcast": _unbroadcast,
    "broadcast_like": _broadcast_like,
    "seed_like": _seed_like,
    "log_or_zero": _log_or_zero,
    "power_base_grad": _power_base_grad,
}
