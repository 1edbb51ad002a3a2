"""The ``math`` plugin: elementwise functions, maximum/minimum, where, clip, comparisons.

Every backward rule uses only Python operators and ``xp.<op>`` (``where``, ``greater``,
``sign``, ...), so the rules build graph nodes too and each op can be differentiated
again. Comparisons and ``sign`` are not differentiable (their derivative is zero almost
everywhere): they have no backward rule, and gradients stop at them.

Every op runs on any array-API backend (``array_api=True``): NumPy arrays and Python
numbers take NumPy (or ``math``), another library's arrays the function of the same name
of their own namespace (``autodag.backend.namespace_of``), never a conversion to NumPy.

This module defines the first ones; :mod:`.more` (further functions of one input),
:mod:`.binary` (``arctan2``, ``hypot``, ``logaddexp``, ``fmax``, ``mod``, ...) and
:mod:`.rounding` (``floor``, ``round``, ``isnan``, ``nan_to_num``, ...) the others, all
registered by the hook below; :mod:`._common` holds what they share.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np

import autodag
from autodag import OpDef, Sample
from autodag.backend import is_array, namespace_of

from ._common import NUMPY as _NUMPY
from ._common import PY_NUMBERS as _PY_NUMBERS
from ._common import Rng as _Rng
from ._common import as_arrays as _as_arrays
from ._common import binary_samples as _binary
from ._common import elementwise as _elementwise
from ._common import fast as _fast
from ._common import two as _two
from ._common import unary_samples as _unary
from .binary import OPS as _BINARY
from .kernel_forms import autodag_kernel_forms as autodag_kernel_forms
from .more import OPS as _MORE
from .onnx_rules import autodag_onnx_converters as autodag_onnx_converters
from .rewrites import autodag_rewrites as autodag_rewrites
from .rounding import OPS as _ROUNDING

__all__ = ["OPS", "autodag_register_ops"]

def _compare(np_fn: Callable[[Any, Any], Any], py_fn: Callable[[Any, Any], bool]) -> Callable[
    [Any, Any], Any
]:
    on_arrays = _two(np_fn)

    def forward(a: Any, b: Any) -> Any:
        if type(a) in (int, float) and type(b) in (int, float):
            return py_fn(a, b)
        return on_arrays(a, b)

    forward.__name__ = np_fn.__name__
    return forward


def _sign(a: Any) -> Any:
    if a.__class__ in _NUMPY or not is_array(a):
        return np.sign(a)
    return namespace_of(a).sign(a)


def _where(condition: Any, x: Any, y: Any) -> Any:
    if ((condition.__class__ in _NUMPY or not is_array(condition))
            and (x.__class__ in _NUMPY or not is_array(x))
            and (y.__class__ in _NUMPY or not is_array(y))):
        return np.where(condition, x, y)
    xp = namespace_of(condition, x, y)
    if condition.__class__ in _PY_NUMBERS:
        condition = xp.asarray(bool(condition))
    elif not xp.isdtype(condition.dtype, "bool"):
        condition = condition != 0  # NumPy's truth of a number; the standard wants bools
    x, y = _as_arrays(xp, x, y)
    return xp.where(condition, x, y)


def _clip(a: Any, a_min: Any, a_max: Any) -> Any:
    if ((a.__class__ in _NUMPY or not is_array(a))
            and (a_min.__class__ in _NUMPY or not is_array(a_min))
            and (a_max.__class__ in _NUMPY or not is_array(a_max))):
        return np.clip(a, a_min, a_max)
    xp = namespace_of(a, a_min, a_max)
    # What numpy.clip computes, a_min > a_max included (every element is then a_max);
    # the standard's clip leaves that case unspecified.
    low = xp.maximum(*_as_arrays(xp, a, a_min))
    return xp.minimum(low, a_max)


# --- backward rules: vjp(xp, g, out, *inputs) ---------------------------------------
def _max_da(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
    # Ties split the gradient evenly, which is what central differences see there.
    return xp.where(xp.greater(a, b), g, xp.where(xp.equal(a, b), 0.5 * g, 0))


def _max_db(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
    return xp.where(xp.less(a, b), g, xp.where(xp.equal(a, b), 0.5 * g, 0))


def _min_da(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
    return xp.where(xp.less(a, b), g, xp.where(xp.equal(a, b), 0.5 * g, 0))


def _min_db(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
    return xp.where(xp.greater(a, b), g, xp.where(xp.equal(a, b), 0.5 * g, 0))


# clip(a, lo, hi) is minimum(maximum(a, lo), hi): exactly one input receives g.
def _clip_da(xp: Any, g: Any, out: Any, a: Any, lo: Any, hi: Any) -> Any:
    return xp.where(xp.less(a, lo), 0, xp.where(xp.greater(a, hi), 0, g))


def _clip_dlo(xp: Any, g: Any, out: Any, a: Any, lo: Any, hi: Any) -> Any:
    return xp.where(xp.less(a, lo), xp.where(xp.greater(lo, hi), 0, g), 0)


def _clip_dhi(xp: Any, g: Any, out: Any, a: Any, lo: Any, hi: Any) -> Any:
    return xp.where(xp.greater(xp.maximum(a, lo), hi), g, 0)


# --- sample inputs for autodag.testing.check_op -------------------------------------
def _away_from_zero(x: Any) -> Any:
    # Finite differences are meaningless within eps of a kink.
    return np.sign(x) * (np.abs(x) + 0.1)


def _where_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((2, 3)) > 0, r((2, 3)), r((2, 3)))),
        Sample((r((2, 3)) > 0, r((3,)), r(()))),
        Sample((r((3,)) > 0, r((2, 1)), r((2, 3)))),
    ]


def _clip_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((2 * r((2, 3)), -0.5, 0.7)),
        Sample((2 * r((3, 4)), -np.abs(r((4,))) - 0.05, np.abs(r((3, 1))) + 0.05)),
        Sample((r((2, 3)), 0.6, -0.4)),  # a_min > a_max: every element is a_max, as NumPy
    ]


def _tanh_vjp(xp: Any, g: Any, out: Any, a: Any) -> Any:
    if (g.__class__ is np.ndarray and out.__class__ is np.ndarray and g.dtype == out.dtype
            and g.shape == out.shape):
        # g * (1 - out**2) with one new array, not two: what a layer's backward costs.
        t = out * out
        np.subtract(1, t, out=t)
        t *= g
        return t
    return g * (1 - out * out)


def _comparison(name: str, np_fn: Callable[[Any, Any], Any],
                py_fn: Callable[[Any, Any], bool], symbol: str) -> OpDef:
    return OpDef(
        name=name, arity=2, forward=_compare(np_fn, py_fn), backward=None,
        input_names=("x1", "x2"), samples=_binary, array_api=True,
        doc=f"Elementwise x1 {symbol} x2 (boolean; not differentiable).",
    )


OPS: Final[tuple[OpDef, ...]] = (
    _elementwise("exp", _fast(np.exp, math.exp), lambda xp, g, out, a: g * out,
                 _unary(), "Elementwise e ** x."),
    _elementwise("log", _fast(np.log, math.log), lambda xp, g, out, a: g / a,
                 _unary(lambda x: np.abs(x) + 0.5), "Natural logarithm, elementwise."),
    _elementwise("log1p", _fast(np.log1p, math.log1p), lambda xp, g, out, a: g / (1 + a),
                 _unary(lambda x: np.abs(x) - 0.5), "log(1 + x), accurate for small x."),
    _elementwise("sqrt", _fast(np.sqrt, math.sqrt), lambda xp, g, out, a: g / (2 * out),
                 _unary(lambda x: np.abs(x) + 0.5), "Non-negative square root, elementwise."),
    _elementwise("sin", _fast(np.sin, math.sin), lambda xp, g, out, a: g * xp.cos(a),
                 _unary(), "Sine, elementwise (radians)."),
    _elementwise("cos", _fast(np.cos, math.cos), lambda xp, g, out, a: -g * xp.sin(a),
                 _unary(), "Cosine, elementwise (radians)."),
    _elementwise("tanh", _fast(np.tanh, math.tanh), _tanh_vjp, _unary(),
                 "Hyperbolic tangent, elementwise."),
    _elementwise("abs", _fast(np.abs, abs, floating=False, name="abs"),
                 lambda xp, g, out, a: g * xp.sign(a),
                 _unary(_away_from_zero), "Absolute value, elementwise; abs(node) builds it."),
    OpDef(name="sign", arity=1, forward=_sign, backward=None, input_names=("x",), array_api=True,
          samples=_unary(_away_from_zero), doc="-1, 0 or 1 by sign (not differentiable)."),
    OpDef(name="maximum", arity=2, forward=_two(np.maximum), backward=(_max_da, _max_db),
          input_names=("x1", "x2"), samples=_binary, array_api=True,
          doc="Elementwise maximum; at ties each input gets half the gradient."),
    OpDef(name="minimum", arity=2, forward=_two(np.minimum), backward=(_min_da, _min_db),
          input_names=("x1", "x2"), samples=_binary, array_api=True,
          doc="Elementwise minimum; at ties each input gets half the gradient."),
    OpDef(
        name="where", arity=3, forward=_where, array_api=True,
        backward=(
            None,
            lambda xp, g, out, c, x, y: xp.where(c, g, 0),
            lambda xp, g, out, c, x, y: xp.where(c, 0, g),
        ),
        input_names=("condition", "x", "y"), samples=_where_samples,
        doc="x where condition is true, else y (condition is not differentiable).",
    ),
    OpDef(
        name="clip", arity=3, forward=_clip, backward=(_clip_da, _clip_dlo, _clip_dhi),
        array_api=True,
        input_names=("a", "a_min", "a_max"), samples=_clip_samples,
        doc="Limit a to [a_min, a_max]; the bounds are inputs, so they may be nodes.",
    ),
    _comparison("less", np.less, lambda a, b: a < b, "<"),
    _comparison("less_equal", np.less_equal, lambda a, b: a <= b, "<="),
    _comparison("greater", np.greater, lambda a, b: a > b, ">"),
    _comparison("greater_equal", np.greater_equal, lambda a, b: a >= b, ">="),
    _comparison("equal", np.equal, lambda a, b: a == b, "=="),
    _comparison("not_equal", np.not_equal, lambda a, b: a != b, "!="),
    *_MORE,
    *_BINARY,
    *_ROUNDING,
)


@autodag.hookimpl
def autodag_register_ops() -> list[OpDef]:
    """The ops of autodag-math."""
    return list(OPS)
