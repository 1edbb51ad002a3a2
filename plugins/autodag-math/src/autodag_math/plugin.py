"""The ``math`` plugin: elementwise functions, maximum/minimum, where, clip, comparisons.

Every backward rule uses only Python operators and ``xp.<op>`` (``where``, ``greater``,
``sign``, ...), so the rules build graph nodes too and each op can be differentiated
again. Comparisons and ``sign`` are not differentiable (their derivative is zero almost
everywhere): they have no backward rule, and gradients stop at them.

Every op runs on any array-API backend (``array_api=True``): NumPy arrays and Python
numbers take NumPy (or ``math``), another library's arrays the function of the same name
of their own namespace (``autodag.backend.namespace_of``), never a conversion to NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np

import autodag
from autodag import OpDef, Sample
from autodag.backend import is_array, namespace_of

__all__ = ["OPS", "autodag_register_ops"]

_Rng = np.random.Generator
_PY_NUMBERS: Final = (bool, int, float, complex)
# The classes of NumPy's and Python's values: one set lookup finds the NumPy fast path
# (``is_array`` asks more, for the rest: subclasses, lists, other libraries' arrays).
_NUMPY: Final = frozenset({np.ndarray, bool, int, float, complex, *np.sctypeDict.values()})
_KINDS: Final = [bool, int, float, complex]  # Python numbers' kinds, narrowest first


def _floated(xp: Any, a: Any) -> Any:
    """An array of another library in floating point, as NumPy computes these functions
    (float64 for integers and bools, where the standard's functions refuse them)."""
    if xp.isdtype(a.dtype, ("real floating", "complex floating")):
        return a
    return xp.astype(a, xp.float64)


def _fast(np_fn: Callable[[Any], Any], math_fn: Callable[[float], float],
          floating: bool = True, name: str = "") -> Callable[[Any], Any]:
    """A forward rule that keeps Python floats as Python floats (scalar graphs run fast),
    computes NumPy values with ``np_fn`` and another library's arrays with the standard's
    function ``name`` (NumPy's name by default), in floating point when ``floating``."""
    name = name or np_fn.__name__
    is_float = floating

    def forward(a: Any) -> Any:
        if type(a) is float:
            try:
                return math_fn(a)
            except (ValueError, OverflowError):
                pass  # outside math's domain: NumPy's answer (inf, nan) instead
        if a.__class__ in _NUMPY or not is_array(a):
            return np_fn(a)
        xp = namespace_of(a)
        return getattr(xp, name)(_floated(xp, a) if is_float else a)

    forward.__name__ = np_fn.__name__
    return forward


def _two(np_fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``np_fn`` for NumPy values, the namesake of another library's namespace for its
    arrays (which take one Python number beside an array)."""
    name = np_fn.__name__

    def forward(a: Any, b: Any) -> Any:
        if ((a.__class__ in _NUMPY or not is_array(a))
                and (b.__class__ in _NUMPY or not is_array(b))):
            return np_fn(a, b)
        return getattr(namespace_of(a, b), name)(a, b)

    forward.__name__ = name
    return forward


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


def _as_arrays(xp: Any, *values: Any) -> list[Any]:
    """``values`` with one Python number made an array of ``xp`` when no value is an
    array: a library takes Python numbers beside an array, never numbers alone. The one
    of the widest kind (as NumPy promotes them: 1.0 and 0 give a float), so that the
    others are numbers of a kind the array takes."""
    if not all(v.__class__ in _PY_NUMBERS for v in values):
        return list(values)
    widest = max(range(len(values)), key=lambda k: _KINDS.index(values[k].__class__))
    return [xp.asarray(v) if k == widest else v for k, v in enumerate(values)]


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
def _unary(transform: Callable[[Any], Any] = lambda x: x) -> Callable[[_Rng], list[Sample]]:
    def samples(rng: _Rng) -> list[Sample]:
        return [
            Sample((transform(rng.standard_normal((2, 3))),)),
            Sample((transform(rng.standard_normal(())),)),
            Sample((transform(rng.standard_normal((4, 1, 2))),)),
        ]

    return samples


def _away_from_zero(x: Any) -> Any:
    # Finite differences are meaningless within eps of a kink.
    return np.sign(x) * (np.abs(x) + 0.1)


def _binary(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    a = r((2, 3))
    return [
        Sample((a, r((2, 3)))),
        Sample((r((2, 3)), r((3,)))),
        Sample((r((2, 1)), r((1, 4)))),
        Sample((r(()), r((2, 2)))),
        Sample((a, a.copy())),  # ties
    ]


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


def _elementwise(
    name: str, forward: Callable[..., Any], rule: Callable[..., Any],
    samples: Callable[[_Rng], list[Sample]], doc: str,
) -> OpDef:
    return OpDef(name=name, arity=1, forward=forward, backward=(rule,), input_names=("x",),
                 samples=samples, doc=doc, array_api=True)


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
)


@autodag.hookimpl
def autodag_register_ops() -> list[OpDef]:
    """The ops of autodag-math."""
    return list(OPS)
