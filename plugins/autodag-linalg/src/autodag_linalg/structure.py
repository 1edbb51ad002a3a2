"""Diagonals and triangles: trace, diagonal, diag, triu, tril.

A diagonal is an einsum with a selector (``linalg_diag_selector``: ``S[d, i, j]`` is 1
where entry ``(i, j)`` is the ``d``-th of the diagonal), so taking one and putting one
back are the same einsum read both ways, and each rule differentiates again. A triangle
is the input times a 0/1 mask (``linalg_tri_mask``), and so is its gradient.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from autodag import OpDef, Sample
from autodag.backend import namespace_of

from ._einsum import any_foreign, float_dtype, generic_einsum, shape_of

__all__ = ["DIAG", "DIAGONAL", "DIAG_SELECTOR", "TRACE", "TRIL", "TRIU", "TRI_MASK"]

_Rng = np.random.Generator


def _diag_len(n1: int, n2: int, offset: int) -> int:
    return max(0, min(n1 - max(-offset, 0), n2 - max(offset, 0)))


def _selector(xp: Any, n1: int, n2: int, offset: int, dtype: Any) -> Any:
    d = xp.reshape(xp.arange(_diag_len(n1, n2, offset)), (-1, 1, 1))
    i = xp.reshape(xp.arange(n1), (1, -1, 1))
    j = xp.reshape(xp.arange(n2), (1, 1, -1))
    hit = (i == d + max(-offset, 0)) & (j == d + max(offset, 0))
    return xp.astype(hit, dtype) if xp is not np else hit.astype(dtype)


def _diag_selector(like: Any, n1: int, n2: int, offset: int) -> Any:
    xp = namespace_of(like) if any_foreign((like,)) else np
    return _selector(xp, n1, n2, offset, float_dtype(xp, like))


def _moved(ndim: int, axis1: int, axis2: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The permutation putting axis1, axis2 last, and its inverse."""
    a1, a2 = axis1 % ndim, axis2 % ndim
    if a1 == a2:
        raise ValueError("axis1 and axis2 cannot be the same")
    perm = (*(i for i in range(ndim) if i not in (a1, a2)), a1, a2)
    return perm, tuple(perm.index(i) for i in range(ndim))


def _diagonal(a: Any, offset: int, axis1: int, axis2: int) -> Any:
    if not any_foreign((a,)):
        return np.diagonal(a, offset, axis1, axis2).copy()  # a view NumPy makes read-only
    xp = namespace_of(a)
    shape = shape_of(a)
    perm, _ = _moved(len(shape), axis1, axis2)
    sel = _selector(xp, shape[axis1], shape[axis2], offset, float_dtype(xp, a))
    return generic_einsum("...ij,dij->...d", xp.permute_dims(a, perm), sel)


def _trace(a: Any, offset: int, axis1: int, axis2: int) -> Any:
    if not any_foreign((a,)):
        return np.trace(a, offset, axis1, axis2)
    return namespace_of(a).sum(_diagonal(a, offset, axis1, axis2), axis=-1)


def _placed(xp: Any, g: Any, a: Any, offset: int, axis1: int, axis2: int, term: str) -> Any:
    """g (batch axes then the diagonal axis ``d``, or just batch axes, per ``term``) put
    back on the diagonal of an array shaped like a."""
    shape = tuple(xp.shape(a))
    _, inverse = _moved(len(shape), axis1, axis2)
    sel = xp.linalg_diag_selector(a, n1=shape[axis1], n2=shape[axis2], offset=offset)
    return xp.transpose(xp.einsum([g, sel], subscripts=f"{term},dij->...ij"), inverse)


def _diagonal_vjp(xp: Any, g: Any, out: Any, a: Any, offset: int, axis1: int,
                  axis2: int) -> Any:
    return _placed(xp, g, a, offset, axis1, axis2, "...d")


def _trace_vjp(xp: Any, g: Any, out: Any, a: Any, offset: int, axis1: int,
               axis2: int) -> Any:
    return _placed(xp, g, a, offset, axis1, axis2, "...")


def _diag(v: Any, k: int) -> Any:
    if not any_foreign((v,)):
        return np.diag(v, k)
    xp = namespace_of(v)
    shape = shape_of(v)
    if len(shape) == 1:
        n = shape[0] + abs(k)
        return generic_einsum("d,dij->ij", v, _selector(xp, n, n, k, float_dtype(xp, v)))
    if len(shape) != 2:
        raise ValueError("Input must be 1- or 2-d.")
    return _diagonal(v, k, 0, 1)


def _diag_vjp(xp: Any, g: Any, out: Any, v: Any, k: int) -> Any:
    shape = tuple(xp.shape(v))
    if len(shape) == 1:
        n = shape[0] + abs(k)
        sel = xp.linalg_diag_selector(v, n1=n, n2=n, offset=k)
        return xp.einsum([g, sel], subscripts="ij,dij->d")
    sel = xp.linalg_diag_selector(v, n1=shape[0], n2=shape[1], offset=k)
    return xp.einsum([g, sel], subscripts="d,dij->ij")


def _tri_bool(xp: Any, n: int, m: int, k: int, upper: bool) -> Any:
    i = xp.reshape(xp.arange(n), (-1, 1))
    j = xp.reshape(xp.arange(m), (1, -1))
    return (j - i >= k) if upper else (j - i <= k)


def _tri_mask(like: Any, k: int, upper: bool) -> Any:
    xp = namespace_of(like) if any_foreign((like,)) else np
    n, m = shape_of(like)[-2:]
    hit = _tri_bool(xp, n, m, k, upper)
    dtype = float_dtype(xp, like)
    return xp.astype(hit, dtype) if xp is not np else hit.astype(dtype)


def _triangle(upper: bool) -> Any:
    def forward(m: Any, k: int) -> Any:
        if not any_foreign((m,)):
            return np.triu(m, k) if upper else np.tril(m, k)
        xp = namespace_of(m)
        n, c = shape_of(m)[-2:]
        return xp.where(_tri_bool(xp, n, c, k, upper), m, xp.zeros((), dtype=m.dtype))

    return forward


def _triangle_vjp(upper: bool) -> Any:
    def vjp(xp: Any, g: Any, out: Any, m: Any, k: int) -> Any:
        return g * xp.linalg_tri_mask(m, k=k, upper=upper)

    return vjp


def _square_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((3, 3)),)), Sample((r((2, 3, 4)),), {"axis1": 1, "axis2": 2}),
            Sample((r((3, 4)),), {"offset": 1}), Sample((r((4, 3, 2)),),
                                                     {"offset": -1, "axis1": 0, "axis2": -2})]


def _diag_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((3,)),)), Sample((r((3, 3)),)), Sample((r((2,)),), {"k": 1}),
            Sample((r((3, 4)),), {"k": -1})]


def _tri_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((3, 3)),)), Sample((r((2, 3, 4)),), {"k": 1}),
            Sample((r((3, 2)),), {"k": -1})]


def _selector_samples(rng: _Rng) -> list[Sample]:
    return [Sample((rng.standard_normal((2,)),), {"n1": 3, "n2": 3, "offset": 1})]


def _tri_mask_samples(rng: _Rng) -> list[Sample]:
    return [Sample((rng.standard_normal((3, 4)),), {"k": 0, "upper": True})]


_AXES: Final = {"offset": 0, "axis1": 0, "axis2": 1}
TRACE: Final = OpDef(
    name="trace", arity=1, attributes=_AXES, forward=_trace, backward=(_trace_vjp,),
    input_names=("a",), samples=_square_samples, array_api=True,
    doc="Sum along a diagonal, as numpy.trace.",
)
DIAGONAL: Final = OpDef(
    name="diagonal", arity=1, attributes=_AXES, forward=_diagonal,
    backward=(_diagonal_vjp,), input_names=("a",), samples=_square_samples, array_api=True,
    doc="A diagonal, as numpy.diagonal (as its last axis; a copy, not a view).",
)
DIAG: Final = OpDef(
    name="diag", arity=1, attributes={"k": 0}, forward=_diag, backward=(_diag_vjp,),
    input_names=("v",), samples=_diag_samples, array_api=True,
    doc="A 1-D input placed on the k-th diagonal of a square matrix, or a 2-D "
        "input's k-th diagonal, as numpy.diag.",
)
TRIU: Final = OpDef(
    name="triu", arity=1, attributes={"k": 0}, forward=_triangle(True),
    backward=(_triangle_vjp(True),), input_names=("m",), samples=_tri_samples,
    array_api=True,
    doc="The upper triangle (from diagonal k) of the last two axes, as numpy.triu.",
)
TRIL: Final = OpDef(
    name="tril", arity=1, attributes={"k": 0}, forward=_triangle(False),
    backward=(_triangle_vjp(False),), input_names=("m",), samples=_tri_samples,
    array_api=True,
    doc="The lower triangle (to diagonal k) of the last two axes, as numpy.tril.",
)
DIAG_SELECTOR: Final = OpDef(
    name="linalg_diag_selector", arity=1, attributes={"n1": 0, "n2": 0, "offset": 0},
    forward=_diag_selector, backward=None, input_names=("like",),
    samples=_selector_samples, array_api=True,
    doc="S[d, i, j] = 1 where (i, j) is the d-th entry of diagonal `offset` of an n1 x n2 "
        "matrix, in like's library and float dtype (a helper of diagonal's rules; no "
        "gradient).",
)
TRI_MASK: Final = OpDef(
    name="linalg_tri_mask", arity=1, attributes={"k": 0, "upper": True},
    forward=_tri_mask, backward=None, input_names=("like",), samples=_tri_mask_samples,
    array_api=True,
    doc="1 on the upper (or lower) triangle from diagonal k of like's last two axes, 0 "
        "elsewhere (a helper of triu's and tril's rules; no gradient).",
)
