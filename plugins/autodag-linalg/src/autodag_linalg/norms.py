"""linalg_norm: numpy.linalg.norm's vector and matrix norms.

Which norm follows NumPy: ``axis=None`` with ``ord=None`` is the 2-norm of the
flattened input; an int axis (or a 1-D input) a vector norm; a pair of axes (or a 2-D
input) a matrix norm. Gradients hold away from kinks: the 2-norm's and p-norms' where
the input is not zero (NaN at zero, as JAX gives), max-type norms' (inf, 1 and inf of
matrices, 2 and -2) split evenly between tied entries, as max does; ord=0 (a count)
has a zero gradient; 'nuc' and 2/-2 need distinct nonzero singular values.

On another library's arrays the forward is the standard's ``linalg.vector_norm`` or
``linalg.matrix_norm`` (over the last two axes, the pair moved there). The rules of
'nuc' and 2/-2 use ``linalg_svdvals``, which runs on any backend too. (Dask's
matrix_norm computes 2 and -2 of single matrices only.)
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from autodag import OpDef, Sample
from autodag.backend import namespace_of

from ._einsum import any_foreign, shape_of
from .decomp import svdvals_vjp

__all__ = ["NORM"]

_Rng = np.random.Generator


def _plan(ndim: int, ord: Any, axis: Any) -> tuple[str, tuple[int, ...]]:
    """The kind of norm ('flat', 'vector' or 'matrix') and its axes, as NumPy picks."""
    if axis is None:
        if ord is None:
            return "flat", tuple(range(ndim))
        axis = tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = tuple(int(a) % ndim for a in axes)
    if len(axes) == 1:
        return "vector", axes
    if len(axes) == 2:
        return "matrix", axes
    raise ValueError("Improper number of dimensions to norm.")


def _norm(x: Any, ord: Any, axis: Any, keepdims: bool) -> Any:
    if not any_foreign((x,)):
        return np.linalg.norm(x, ord, axis, keepdims)
    xp = namespace_of(x)
    ndim = len(shape_of(x))
    kind, axes = _plan(ndim, ord, axis)
    if kind == "flat":
        return xp.linalg.vector_norm(x, axis=None, keepdims=keepdims)
    if kind == "vector":
        return xp.linalg.vector_norm(x, axis=axes[0], keepdims=keepdims,
                                     ord=2 if ord is None else ord)
    perm = (*(i for i in range(ndim) if i not in axes), *axes)
    out = xp.linalg.matrix_norm(xp.permute_dims(x, perm), keepdims=False,
                                ord="fro" if ord is None else ord)
    return _expand(xp, out, axes, not keepdims)


def _expand(xp: Any, v: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    """``v`` with the reduced ``axes`` put back as length-1 axes (unless kept)."""
    if keepdims:
        return v
    for ax in sorted(axes):
        v = xp.expand_dims(v, ax)
    return v


def _vector_vjp(xp: Any, ge: Any, oe: Any, x: Any, ord: Any, ax: int) -> Any:
    if ord is None or ord == 2:
        return ge * x / oe
    if ord == 0:
        return ge * 0 * x  # a count of nonzero entries: no gradient
    if ord == math.inf:
        return ge * xp.sign(x) * xp.max_weights(xp.abs(x), axis=ax)
    if ord == -math.inf:
        return ge * xp.sign(x) * xp.max_weights(-xp.abs(x), axis=ax)
    if ord == 1:
        return ge * xp.sign(x)
    return ge * xp.sign(x) * xp.power(xp.abs(x) / oe, ord - 1)


def _matrix_vjp(xp: Any, ge: Any, oe: Any, x: Any, ord: Any, axes: tuple[int, ...]) -> Any:
    r, c = axes
    if ord in (None, "fro"):
        return ge * x / oe
    if ord in (1, -1, math.inf, -math.inf):
        inner, outer = (r, c) if ord in (1, -1) else (c, r)
        sums = xp.sum(xp.abs(x), axis=inner, keepdims=True)
        pick = xp.max_weights(sums if ord > 0 else -sums, axis=outer)
        return ge * xp.sign(x) * pick
    if ord in ("nuc", 2, -2):
        ndim = xp.ndim(x)
        perm = (*(i for i in range(ndim) if i not in (r, c)), r, c)
        inverse = tuple(perm.index(i) for i in range(ndim))
        xm = xp.transpose(x, perm)
        s = xp.linalg_svdvals(xm)
        gs = xp.squeeze(xp.transpose(ge, perm), -1)  # one axis of length 1 left for s
        if ord == "nuc":
            gs = gs * (s * 0 + 1)
        else:
            gs = gs * xp.max_weights(s if ord == 2 else -s, axis=-1)
        return xp.transpose(svdvals_vjp(xp, gs, s, xm), inverse)
    raise ValueError(f"Invalid norm order {ord!r} for matrices.")


def _norm_vjp(xp: Any, g: Any, out: Any, x: Any, ord: Any, axis: Any,
              keepdims: bool) -> Any:
    kind, axes = _plan(xp.ndim(x), ord, axis)
    ge, oe = _expand(xp, g, axes, keepdims), _expand(xp, out, axes, keepdims)
    if kind == "flat":
        return ge * x / oe
    if kind == "vector":
        return _vector_vjp(xp, ge, oe, x, ord, axes[0])
    return _matrix_vjp(xp, ge, oe, x, ord, axes)


def _norm_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((2, 3)),)),
        Sample((r((2, 3)),), {"axis": 1, "keepdims": True}),
        Sample((r((4,)),), {"ord": 1}),
        Sample((r((4,)),), {"ord": math.inf}),
        Sample((r((3, 4)),), {"ord": 3, "axis": 0}),
        Sample((r((4,)),), {"ord": -math.inf}),
        Sample((r((3, 3)),), {"ord": "fro"}),
        Sample((r((3, 2)) + np.eye(3, 2) * 2.0,), {"ord": "nuc"}),
        Sample((r((2, 3, 2)) + np.eye(3, 2) * 2.0,), {"ord": 2, "axis": (1, 2)}),
        Sample((r((3, 2)) + np.eye(3, 2) * 2.0,), {"ord": -2}),
        Sample((r((3, 4)),), {"ord": 1}),
        Sample((r((2, 3, 4)),), {"ord": -math.inf, "axis": (2, 0)}),
        Sample((r((3,)),), {"ord": 0.5}),
    ]


NORM: Final = OpDef(
    name="linalg_norm", arity=1, attributes={"ord": None, "axis": None, "keepdims": False},
    forward=_norm, backward=(_norm_vjp,), input_names=("x",), samples=_norm_samples,
    array_api=True,
    doc="Vector or matrix norm, as numpy.linalg.norm(x, ord, axis, keepdims); gradients "
        "away from zero and ties (NaN at x = 0 for the 2-norm).",
)
