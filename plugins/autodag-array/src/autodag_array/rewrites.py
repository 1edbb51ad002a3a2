"""The array plugin's rewrites: a transpose of a transpose is one transpose, or none;
the sum of a broadcast is a multiple of a smaller sum.

``transpose_transpose`` is exact: moving axes twice moves the same elements as moving
them once, and its gradient (a transpose back) is the same data movement too.
``sum_broadcast`` (opt-in) changes rounding: ``sum(broadcast_to(x, s))`` becomes
``sum(x) * k``, ``k`` copies summed as one product.
"""

from __future__ import annotations

import math
from typing import Any, Final

import autodag
from autodag import Rewrite, ShapeMismatchError

from .shaping import permutation

__all__ = ["REWRITES", "autodag_rewrites"]


def _transpose_transpose(ctx: Any, node: Any) -> Any:
    (a,) = node.inputs
    if ctx.op_of(a) != "transpose":
        return None
    x = a.inputs[0]
    inner_shape, outer_shape = ctx.shape(x), ctx.shape(a)
    if inner_shape is None or outer_shape is None:
        return None
    try:
        inner = permutation(inner_shape, a.attrs.get("axes"))
        outer = permutation(outer_shape, node.attrs.get("axes"))
    except ShapeMismatchError:  # axes the op itself refuses: its error, at run time
        return None
    combined = tuple(inner[k] for k in outer)
    if combined == tuple(range(len(combined))):
        return x
    return ctx.build("transpose", x, like=node, axes=combined)


def _sum_broadcast(ctx: Any, node: Any) -> Any:
    (a,) = node.inputs
    if (ctx.op_of(a) != "broadcast_to" or node.attrs.get("axis") is not None
            or node.attrs.get("keepdims") or not ctx.floating(a.inputs[0])):
        return None
    x = a.inputs[0]
    x_shape, a_shape = ctx.shape(x), ctx.shape(a)
    if x_shape is None or a_shape is None:
        return None
    small, big = math.prod(x_shape), math.prod(a_shape)
    if small == 0 or big % small:
        return None
    total = ctx.build("sum", x, like=node, axis=None, keepdims=False)
    return total if big == small else ctx.build("multiply", total, ctx.constant(
        float(big // small)), like=node)


REWRITES: Final = {
    "transpose_transpose": Rewrite(("transpose",), _transpose_transpose,
                                   "transpose(transpose(x)) -> x, or one transpose"),
    "sum_broadcast": Rewrite(("sum",), _sum_broadcast, "sum(broadcast_to(x, s)) -> "
                             "sum(x) * k (opt-in: changes rounding)", exact=False),
}


@autodag.hookimpl
def autodag_rewrites() -> dict[str, Rewrite]:
    """The array plugin's rewrites."""
    return dict(REWRITES)
