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
from autodag import Rewrite

__all__ = ["REWRITES", "autodag_rewrites"]


def _perm(axes: Any, ndim: int) -> tuple[int, ...] | None:
    """transpose's ``axes`` as a permutation of ``range(ndim)``, None when not one."""
    if axes is None:
        return tuple(range(ndim - 1, -1, -1))
    try:
        given = [int(k) for k in axes]
    except (TypeError, ValueError):
        return None
    if not all(-ndim <= k < ndim for k in given):
        return None
    perm = tuple(k % ndim for k in given)
    return perm if sorted(perm) == list(range(ndim)) else None


def _transpose_transpose(ctx: Any, node: Any) -> Any:
    (a,) = node.inputs
    if ctx.op_of(a) != "transpose":
        return None
    x = a.inputs[0]
    try:
        ndim = len(x.shape)
    except Exception:  # a shape rule that cannot answer: left alone
        return None
    inner, outer = _perm(a.attrs.get("axes"), ndim), _perm(node.attrs.get("axes"), ndim)
    if inner is None or outer is None:
        return None
    combined = tuple(inner[k] for k in outer)
    if combined == tuple(range(ndim)):
        return x
    return ctx.build("transpose", x, like=node, axes=combined)


def _sum_broadcast(ctx: Any, node: Any) -> Any:
    (a,) = node.inputs
    if (ctx.op_of(a) != "broadcast_to" or node.attrs.get("axis") is not None
            or node.attrs.get("keepdims") or not ctx.floating(a.inputs[0])):
        return None
    x = a.inputs[0]
    try:
        small, big = math.prod(x.shape), math.prod(a.shape)
    except Exception:  # a shape rule that cannot answer: left alone
        return None
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
