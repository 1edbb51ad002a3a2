"""prod, and prod_others (each element's product of the others it is reduced with): the
gradient of prod, exact where the input has zeros (``prod / a`` would be nan there).

prod_others multiplies the cumulative products from either side of each element, so
it never divides; one code serves every library (NumPy's namespace is one too). Its
own gradient, for second order, is written with ``/ a``, so second derivatives of prod
are nan where an input is exactly 0; first derivatives are exact everywhere.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from autodag import OpDef, Sample
from autodag.axes import checked_axes as _checked_axes
from autodag.backend import namespace_of

from ._xp import float_dtype, foreign, reshape, shape_of
from .reductions import keepdims_form

__all__ = ["PROD", "PROD_OTHERS"]

_Rng = np.random.Generator


def _prod(a: Any, axis: Any, keepdims: bool) -> Any:
    try:
        if foreign(a):
            axes = _checked_axes("prod", axis, shape_of(a), legacy=True)
            return namespace_of(a).prod(a, axis=axes, keepdims=keepdims)
        return np.prod(a, axis=axis, keepdims=keepdims)
    except (TypeError, ValueError):
        _checked_axes("prod", axis, shape_of(a), legacy=True)
        raise  # not the axis: NumPy's own error


def _exclusive_cumprod(xp: Any, t: Any, dt: Any) -> Any:
    """Along the last axis, the product of the elements before each one (1 for the first)."""
    ones = xp.ones((*shape_of(t)[:-1], 1), dtype=dt)
    return xp.concat([ones, xp.cumulative_prod(t, axis=-1)[..., :-1]], axis=-1)


def _prod_others(a: Any, axis: Any) -> Any:
    xp = namespace_of(a) if foreign(a) else np
    if xp is np:
        a = np.asarray(a)
    shape = shape_of(a)
    axes = _checked_axes("prod_others", axis, shape, legacy=True)
    dt = float_dtype(xp, a)
    a = xp.astype(a, dt)
    if not shape:
        return xp.ones((), dtype=dt)  # a 0-d input is its own group: nothing else
    rest = [i for i in range(len(shape)) if i not in axes]
    perm = (*rest, *sorted(axes))
    moved = xp.permute_dims(a, perm)
    t = reshape(xp, moved, (*(shape[i] for i in rest), math.prod(shape[i] for i in axes)))
    before = _exclusive_cumprod(xp, t, dt)
    after = xp.flip(_exclusive_cumprod(xp, xp.flip(t, axis=-1), dt), axis=-1)
    others = reshape(xp, before * after, shape_of(moved))
    inverse = tuple(sorted(range(len(shape)), key=lambda d: perm[d]))
    return xp.permute_dims(others, inverse)


def _prod_others_vjp(xp: Any, h: Any, out: Any, a: Any, axis: Any) -> Any:
    # d others_k / d a_j = others_j / a_k for j != k (and 0 for j == k), hence:
    return out * (xp.sum(h / a, axis=axis, keepdims=True) - h / a)


def _signed(rng: _Rng, shape: tuple[int, ...]) -> Any:
    return rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


def _prod_samples(rng: _Rng) -> list[Sample]:
    x = _signed(rng, (2, 3, 4))
    # No zeros: second derivatives there are nan (tests/test_array_more.py checks the
    # first ones at zeros).
    return [
        Sample((x,), {"axis": 1}),
        Sample((x,)),
        Sample((x,), {"axis": (0, 2), "keepdims": True}),
        Sample((x,), {"axis": -1}),
        Sample((np.float64(1.3),)),
    ]


def _prod_others_samples(rng: _Rng) -> list[Sample]:
    x = _signed(rng, (2, 3, 4))
    return [
        Sample((x,), {"axis": 1}),
        Sample((x,)),
        Sample((x,), {"axis": (0, 2)}),
        Sample((np.float64(1.3),)),
    ]


PROD: Final = OpDef(
    name="prod", arity=1, forward=_prod, attributes={"axis": None, "keepdims": False},
    backward=(lambda xp, g, out, a, axis, keepdims: keepdims_form(xp, g, axis, keepdims)
              * xp.prod_others(a, axis=axis),),
    input_names=("a",), samples=_prod_samples, array_api=True,
    doc="Product over axis, as numpy.prod; the gradient is exact where inputs are 0 "
        "(second derivatives there are nan). axis is None (every axis), an int or a "
        "tuple of ints; keepdims keeps the reduced axes as length 1.",
)
PROD_OTHERS: Final = OpDef(
    name="prod_others", arity=1, forward=_prod_others, attributes={"axis": None},
    backward=(_prod_others_vjp,), samples=_prod_others_samples, array_api=True,
    doc="Each element's product of the others in its group of a reduction over axis "
        "(the gradient of prod), computed without dividing.",
)
