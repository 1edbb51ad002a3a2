"""Elementwise functions of two inputs that broadcast: ``arctan2``, ``hypot``,
``logaddexp``/``logaddexp2``, the NaN-ignoring ``fmax``/``fmin``, and ``mod`` with its
other name ``remainder``.

The log-add-exp rules read the output: ``exp(x1 - out)`` never overflows, since ``out``
is at least the larger input, so gradients stay finite at +-1000. ``mod``'s rule uses
``floor`` (not differentiable), which is right almost everywhere: ``x1 - floor(x1 / x2)
* x2`` has zero second derivative away from its jumps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from autodag import OpDef, Sample
from autodag.backend import namespace_of

from ._common import PY_NUMBERS, Rng, binary_samples, floated, foreign, two

__all__ = ["OPS"]

LN2: Final = math.log(2.0)


def _arrays(xp: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """Both inputs as floating arrays of ``xp`` (a Python number beside an array takes
    the array's dtype), for the functions the standard does not take numbers in."""
    a, b = floated(xp, a), floated(xp, b)
    if a.__class__ in PY_NUMBERS:
        a = xp.asarray(a, dtype=b.dtype)
    if b.__class__ in PY_NUMBERS:
        b = xp.asarray(b, dtype=a.dtype)
    return a, b


def _logaddexp2(a: Any, b: Any) -> Any:
    if not (foreign(a) or foreign(b)):
        return np.logaddexp2(a, b)
    xp = namespace_of(a, b)
    a, b = _arrays(xp, a, b)
    big = xp.maximum(a, b)
    # NumPy's form: the larger plus log2(1 + 2 ** -|a - b|); equal inputs give a + 1
    # (also at +-inf, where a - b is nan).
    rest = xp.log1p(2.0 ** -xp.abs(a - b)) / LN2
    return xp.where(a == b, a + 1, big + rest)


def _nan_ignoring(pick: str, np_fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``np.fmax``/``np.fmin``: ``maximum``/``minimum`` where a NaN loses to a number."""

    def forward(a: Any, b: Any) -> Any:
        if not (foreign(a) or foreign(b)):
            return np_fn(a, b)
        xp = namespace_of(a, b)
        a, b = _arrays(xp, a, b)
        both = getattr(xp, pick)(a, b)
        return xp.where(xp.isnan(b), a, xp.where(xp.isnan(a), b, both))

    forward.__name__ = np_fn.__name__
    return forward


# --- backward rules: vjp(xp, g, out, x1, x2) -----------------------------------------
def _arctan2_da(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
    return g * b / (a * a + b * b)


def _arctan2_db(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
    return -g * a / (a * a + b * b)


def _fmax_da(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
    # As maximum's (ties split), and all of it where x2 is NaN (out is x1 there).
    share = xp.where(xp.greater(a, b), g, xp.where(xp.equal(a, b), 0.5 * g, 0))
    return xp.where(xp.isnan(b), g, share)


def _fmax_db(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
    share = xp.where(xp.less(a, b), g, xp.where(xp.equal(a, b), 0.5 * g, 0))
    return xp.where(xp.isnan(a), g, share)


def _fmin_da(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
    share = xp.where(xp.less(a, b), g, xp.where(xp.equal(a, b), 0.5 * g, 0))
    return xp.where(xp.isnan(b), g, share)


def _fmin_db(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
    share = xp.where(xp.greater(a, b), g, xp.where(xp.equal(a, b), 0.5 * g, 0))
    return xp.where(xp.isnan(a), g, share)


def _mod_db(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
    return -g * xp.floor(a / b)


# --- samples ---------------------------------------------------------------------------
def _magnitudes(rng: Rng, shape: tuple[int, ...], low: float, high: float) -> Any:
    """Values of random signs with magnitudes in [low, high]."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(low, high, shape)


def _arctan2_samples(rng: Rng) -> list[Sample]:
    # x1 away from 0: arctan2 jumps by 2 pi across x1 = 0 where x2 < 0.
    m = _magnitudes
    return [
        Sample((m(rng, (2, 3), 0.2, 2.0), rng.standard_normal((2, 3)))),
        Sample((m(rng, (2, 3), 0.2, 2.0), rng.standard_normal((3,)))),
        Sample((m(rng, (2, 1), 0.2, 2.0), rng.standard_normal((1, 4)))),
        Sample((m(rng, (), 0.2, 2.0), rng.standard_normal((2, 2)))),
    ]


def _mod_samples(rng: Rng) -> list[Sample]:
    # x1 / x2 at least 0.15 from an integer, where mod jumps.
    m = _magnitudes
    b = m(rng, (3,), 0.5, 1.5)
    steps = rng.integers(-3, 4, (2, 3)) + rng.uniform(0.15, 0.85, (2, 3))
    return [
        Sample((steps * b, b)),
        Sample((m(rng, (2, 1), 0.2, 0.85), m(rng, (1, 4), 1.0, 1.05))),
        Sample((m(rng, (), 0.2, 0.85), m(rng, (2, 2), 1.0, 1.05))),
        Sample((steps * b + 0 * rng.standard_normal((4, 1, 1)), b)),
    ]


def _binary(name: str, forward: Callable[[Any, Any], Any],
            rules: tuple[Callable[..., Any], Callable[..., Any]],
            samples: Callable[[Rng], list[Sample]], doc: str) -> OpDef:
    return OpDef(name=name, arity=2, forward=forward, backward=rules,
                 input_names=("x1", "x2"), samples=samples, doc=doc, array_api=True)


def _mod(name: str, other: str) -> OpDef:
    return _binary(
        name, two(np.remainder, name="remainder"),
        (lambda xp, g, out, a, b: g, _mod_db), _mod_samples,
        f"x1 - floor(x1 / x2) * x2 with the sign of x2 (Python's %); same as {other}.",
    )


OPS: Final[tuple[OpDef, ...]] = (
    _binary("arctan2", two(np.arctan2, name="atan2", floating=True), (_arctan2_da, _arctan2_db),
            _arctan2_samples, "Angle of the point (x2, x1), elementwise, in [-pi, pi]."),
    _binary("hypot", two(np.hypot, floating=True),
            (lambda xp, g, out, a, b: g * a / out, lambda xp, g, out, a, b: g * b / out),
            binary_samples, "sqrt(x1 ** 2 + x2 ** 2), elementwise, without overflow."),
    _binary("logaddexp", two(np.logaddexp, floating=True),
            (lambda xp, g, out, a, b: g * xp.exp(a - out),
             lambda xp, g, out, a, b: g * xp.exp(b - out)),
            binary_samples, "log(exp(x1) + exp(x2)), elementwise, stable for large inputs."),
    _binary("logaddexp2", _logaddexp2,
            (lambda xp, g, out, a, b: g * xp.exp2(a - out),
             lambda xp, g, out, a, b: g * xp.exp2(b - out)),
            binary_samples, "log2(2 ** x1 + 2 ** x2), elementwise, stable for large inputs."),
    _binary("fmax", _nan_ignoring("maximum", np.fmax), (_fmax_da, _fmax_db), binary_samples,
            "Elementwise maximum ignoring NaNs; at ties each input gets half the gradient."),
    _binary("fmin", _nan_ignoring("minimum", np.fmin), (_fmin_da, _fmin_db), binary_samples,
            "Elementwise minimum ignoring NaNs; at ties each input gets half the gradient."),
    _mod("mod", "remainder"),
    _mod("remainder", "mod"),
)
