"""Rounding and floating-point classification: ``floor``, ``ceil``, ``trunc``, ``round``,
``isnan``, ``isfinite``, ``isinf`` (not differentiable: their derivative is zero almost
everywhere, so they have no backward rule and gradients stop at them), and
``nan_to_num``, which passes the gradient through where its input is finite.

Integers keep their dtype, as NumPy keeps them.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Final

import numpy as np

from autodag import OpDef, Sample
from autodag.backend import namespace_of

from ._common import Rng, fast, foreign

__all__ = ["OPS"]


def _py_round(a: Any, decimals: int = 0) -> Any:
    if type(a) is float and decimals == 0 and math.isfinite(a):
        return round(a, 0)  # half to even, as NumPy's rint
    return np.round(a, decimals)


def _round(a: Any, decimals: int = 0) -> Any:
    if not foreign(a):
        return _py_round(a, decimals)
    xp = namespace_of(a)
    if not xp.isdtype(a.dtype, ("real floating", "complex floating")):
        if decimals >= 0:
            return a  # an integer has no digits after the point
        f = 10**-decimals
        return xp.astype(xp.round(xp.astype(a, xp.float64) / f) * f, a.dtype)
    if decimals == 0:
        return xp.round(a)
    # What NumPy computes: scale, round half to even, scale back (dividing by 10 ** -d
    # for negative d, which is exact where multiplying by 10 ** d is not).
    if decimals > 0:
        f = 10.0**decimals
        return xp.round(a * f) / f
    f = 10.0**-decimals
    return xp.round(a / f) * f


def _py_nan_to_num(a: float, nan: float, posinf: float | None, neginf: float | None) -> float:
    if a != a:
        return float(nan)
    if a == math.inf:
        return sys.float_info.max if posinf is None else float(posinf)
    if a == -math.inf:
        return -sys.float_info.max if neginf is None else float(neginf)
    return a


def _nan_to_num(a: Any, nan: float = 0.0, posinf: float | None = None,
                neginf: float | None = None) -> Any:
    if type(a) is float:
        return _py_nan_to_num(a, nan, posinf, neginf)
    if not foreign(a):
        return np.nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf)
    xp = namespace_of(a)
    if xp.isdtype(a.dtype, "complex floating"):  # NumPy's: each part on its own
        parts = (_nan_to_num(xp.real(a), nan, posinf, neginf),
                 _nan_to_num(xp.imag(a), nan, posinf, neginf))
        return parts[0] + parts[1] * 1j
    if not xp.isdtype(a.dtype, "real floating"):
        return a  # integers and bools are finite already
    big = xp.finfo(a.dtype).max
    hi = xp.full_like(a, big if posinf is None else posinf)
    lo = xp.full_like(a, -big if neginf is None else neginf)
    out = xp.where(xp.isnan(a), xp.full_like(a, nan), a)
    return xp.where(a == math.inf, hi, xp.where(a == -math.inf, lo, out))


def _specials(rng: Rng) -> list[Sample]:
    x = rng.standard_normal((2, 3))
    x[0, 0], x[0, 2], x[1, 1] = np.nan, np.inf, -np.inf
    return [
        Sample((x,)),
        Sample((rng.standard_normal(()),)),
        Sample((np.array([np.nan, -np.inf, 0.0, 1e30, np.inf]),)),
    ]


def _off_steps(rng: Rng) -> Any:
    # Values a quarter-step from every integer and half-integer: no rounding tie.
    return rng.integers(-5, 6, (2, 3)) + rng.choice([0.13, 0.37, 0.63, 0.87], (2, 3))


def _round_samples(rng: Rng) -> list[Sample]:
    x = _off_steps(rng)
    return [
        Sample((x,)),
        Sample((x / 10 + 0.001,), {"decimals": 2}),
        Sample((100 * x,), {"decimals": -1}),
        Sample((rng.standard_normal(()),), {"decimals": 1}),
    ]


def _nan_to_num_samples(rng: Rng) -> list[Sample]:
    x = rng.standard_normal((2, 3))
    x[0, 1], x[1, 0], x[1, 2] = np.nan, np.inf, -np.inf
    return [
        Sample((rng.standard_normal((2, 3)),)),
        Sample((x,), {"nan": 1.5, "posinf": 9.0, "neginf": -9.0}),
        Sample((rng.standard_normal(()),)),
    ]


def _stop(name: str, np_fn: Any, math_fn: Any, doc: str, samples: Any) -> OpDef:
    return OpDef(name=name, arity=1, forward=fast(np_fn, math_fn, floating=False),
                 backward=None, input_names=("x",), array_api=True, samples=samples, doc=doc)


def _off_step_samples(rng: Rng) -> list[Sample]:
    return [Sample((_off_steps(rng),)), Sample((rng.standard_normal(()),)),
            Sample((3 * rng.standard_normal((4, 1, 2)),))]


OPS: Final[tuple[OpDef, ...]] = (
    _stop("isnan", np.isnan, math.isnan, "Whether x is NaN (boolean; no gradient).", _specials),
    _stop("isfinite", np.isfinite, math.isfinite,
          "Whether x is neither infinite nor NaN (boolean; no gradient).", _specials),
    _stop("isinf", np.isinf, math.isinf, "Whether x is +-inf (boolean; no gradient).", _specials),
    _stop("floor", np.floor, lambda a: float(math.floor(a)),
          "Largest integer <= x, elementwise (gradient zero: none).", _off_step_samples),
    _stop("ceil", np.ceil, lambda a: float(math.ceil(a)),
          "Smallest integer >= x, elementwise (gradient zero: none).", _off_step_samples),
    _stop("trunc", np.trunc, lambda a: float(math.trunc(a)),
          "x rounded toward zero, elementwise (gradient zero: none).", _off_step_samples),
    OpDef(name="round", arity=1, forward=_round, backward=None, attributes={"decimals": 0},
          input_names=("a",), array_api=True, samples=_round_samples,
          doc="a rounded half to even to `decimals` digits (gradient zero: none)."),
    OpDef(name="nan_to_num", arity=1, forward=_nan_to_num,
          backward=(lambda xp, g, out, a, **_: xp.where(xp.isfinite(a), g, 0),),
          attributes={"nan": 0.0, "posinf": None, "neginf": None}, input_names=("x",),
          array_api=True, samples=_nan_to_num_samples,
          doc="x with NaN and +-inf replaced (by default by 0 and the largest finite values); "
              "the gradient passes where x is finite."),
)
