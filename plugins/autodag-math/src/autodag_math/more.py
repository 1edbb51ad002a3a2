"""More elementwise functions of one input: powers and logarithms in other bases,
trigonometry and its inverses, hyperbolic functions, ``sinc``, ``reciprocal``, ``cbrt``
and conversions between degrees and radians.

Each backward rule uses only Python operators and ``xp.<op>``, and rules that can read
the output do (``tan``, ``expm1``, ``exp2``, ``reciprocal``), so each op differentiates
again. Every op runs on any array-API backend: where the standard lacks NumPy's function
(``exp2``, ``sinc``, ``reciprocal`` before 2024.12) it is written with the standard's.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from autodag import OpDef
from autodag.backend import namespace_of

from ._common import elementwise, fast, floated, foreign, unary_samples

__all__ = ["OPS"]

LN2: Final = math.log(2.0)
LN10: Final = math.log(10.0)


def _away_from_zero(x: Any) -> Any:
    # Finite differences are meaningless across a pole or kink at zero.
    return np.sign(x) * (np.abs(x) + 0.5)


def _exp2(a: Any) -> Any:
    if type(a) is float:
        try:
            return 2.0**a
        except OverflowError:
            pass  # NumPy's inf instead
    if not foreign(a):
        return np.exp2(a)
    return 2.0 ** floated(namespace_of(a), a)  # the standard has no exp2


def _py_sinc(a: float) -> float:
    if a == 0:
        return 1.0
    y = math.pi * a
    return math.sin(y) / y


def _sinc(a: Any) -> Any:
    if type(a) is float and math.isfinite(a):
        return _py_sinc(a)
    if not foreign(a):
        return np.sinc(a)
    xp = namespace_of(a)
    x = floated(xp, a)
    zero = x == 0
    ones = xp.ones_like(x)
    y = math.pi * xp.where(zero, ones, x)  # the limit at 0 is 1: no 0 / 0 computed there
    return xp.where(zero, ones, xp.sin(y) / y)


def _reciprocal(a: Any) -> Any:
    if type(a) is float and a != 0:
        return 1.0 / a
    if not foreign(a):
        return np.reciprocal(a)
    xp = namespace_of(a)
    return 1 / floated(xp, a)  # exactly what reciprocal rounds to


def _sinc_vjp(xp: Any, g: Any, out: Any, a: Any) -> Any:
    # d sinc/dx = (cos(pi x) - sinc(x)) / x, 0 at x = 0; the divisor is kept nonzero there
    # so that no branch, nor its derivative, is a 0 / 0.
    zero = xp.equal(a, 0)
    safe = xp.where(zero, 1.0, a)
    return g * xp.where(zero, 0.0, (xp.cos(math.pi * a) - out) / safe)


def _cbrt(a: Any) -> Any:
    if type(a) is float:
        return math.copysign(abs(a) ** (1.0 / 3.0), a)
    if not foreign(a):
        return np.cbrt(a)
    xp = namespace_of(a)
    x = floated(xp, a)
    return xp.sign(x) * xp.abs(x) ** (1.0 / 3.0)  # the standard has no cbrt


def _scaled(factor: float, np_fn: Any) -> Any:
    # Degrees and radians: one multiplication, on every backend.
    def forward(a: Any) -> Any:
        if type(a) is float or foreign(a):
            return a * factor
        return np_fn(a)

    return forward


DEG: Final = math.pi / 180.0


def _within(bound: float) -> Any:
    # Values in (-bound, bound): inside a domain edge or a pole, never near it.
    return lambda x: bound * np.tanh(x)


OPS: Final[tuple[OpDef, ...]] = (
    elementwise("square", fast(np.square, lambda a: a * a, floating=False),
                lambda xp, g, out, a: g * (2 * a), unary_samples(), "x * x, elementwise."),
    elementwise("log2", fast(np.log2, math.log2), lambda xp, g, out, a: g / (a * LN2),
                unary_samples(lambda x: np.abs(x) + 0.5), "Base-2 logarithm, elementwise."),
    elementwise("log10", fast(np.log10, math.log10), lambda xp, g, out, a: g / (a * LN10),
                unary_samples(lambda x: np.abs(x) + 0.5), "Base-10 logarithm, elementwise."),
    elementwise("expm1", fast(np.expm1, math.expm1), lambda xp, g, out, a: g * (out + 1),
                unary_samples(), "exp(x) - 1, accurate for small x."),
    elementwise("exp2", _exp2, lambda xp, g, out, a: g * out * LN2,
                unary_samples(), "Elementwise 2 ** x."),
    elementwise("tan", fast(np.tan, math.tan), lambda xp, g, out, a: g * (1 + out * out),
                unary_samples(_within(1.2)), "Tangent, elementwise (radians)."),
    elementwise("arcsin", fast(np.arcsin, math.asin, name="asin"),
                lambda xp, g, out, a: g / xp.sqrt(1 - a * a),
                unary_samples(_within(0.9)), "Inverse sine, elementwise, in [-pi/2, pi/2]."),
    elementwise("arccos", fast(np.arccos, math.acos, name="acos"),
                lambda xp, g, out, a: -g / xp.sqrt(1 - a * a),
                unary_samples(_within(0.9)), "Inverse cosine, elementwise, in [0, pi]."),
    elementwise("arctan", fast(np.arctan, math.atan, name="atan"),
                lambda xp, g, out, a: g / (1 + a * a),
                unary_samples(), "Inverse tangent, elementwise, in (-pi/2, pi/2)."),
    elementwise("sinh", fast(np.sinh, math.sinh), lambda xp, g, out, a: g * xp.cosh(a),
                unary_samples(), "Hyperbolic sine, elementwise."),
    elementwise("cosh", fast(np.cosh, math.cosh), lambda xp, g, out, a: g * xp.sinh(a),
                unary_samples(), "Hyperbolic cosine, elementwise."),
    elementwise("arcsinh", fast(np.arcsinh, math.asinh, name="asinh"),
                lambda xp, g, out, a: g / xp.sqrt(a * a + 1),
                unary_samples(), "Inverse hyperbolic sine, elementwise."),
    # sqrt(x - 1) * sqrt(x + 1), not sqrt(x * x - 1): no cancellation near x = 1.
    elementwise("arccosh", fast(np.arccosh, math.acosh, name="acosh"),
                lambda xp, g, out, a: g / (xp.sqrt(a - 1) * xp.sqrt(a + 1)),
                unary_samples(lambda x: np.abs(x) + 1.2),
                "Inverse hyperbolic cosine, elementwise (x >= 1)."),
    elementwise("arctanh", fast(np.arctanh, math.atanh, name="atanh"),
                lambda xp, g, out, a: g / (1 - a * a),
                unary_samples(_within(0.9)),
                "Inverse hyperbolic tangent, elementwise (-1 < x < 1)."),
    elementwise("sinc", _sinc, _sinc_vjp, unary_samples(_away_from_zero),
                "Normalized sinc: sin(pi x) / (pi x), 1 at x = 0."),
    elementwise("reciprocal", _reciprocal, lambda xp, g, out, a: -g * out * out,
                unary_samples(_away_from_zero), "1 / x, elementwise."),
    elementwise("cbrt", _cbrt, lambda xp, g, out, a: g / (3 * out * out),
                unary_samples(_away_from_zero), "Cube root, elementwise (negative for x < 0)."),
    *(elementwise(name, _scaled(f, fn), (lambda k: lambda xp, g, out, a: g * k)(f),
                  unary_samples(), doc)
      for name, f, fn, doc in (
          ("deg2rad", DEG, np.deg2rad, "Degrees to radians, elementwise."),
          ("radians", DEG, np.radians, "Degrees to radians, elementwise (deg2rad)."),
          ("rad2deg", 1 / DEG, np.rad2deg, "Radians to degrees, elementwise."),
          ("degrees", 1 / DEG, np.degrees, "Radians to degrees, elementwise (rad2deg)."))),
)
