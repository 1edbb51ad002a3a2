"""Reductions beyond sum/mean/max (prod is in products.py): min, ptp, var, std,
average, median, and the index reductions argmax, argmin (not differentiable), with the
helpers their rules use (average_grad, median_weights).

Axes are NumPy's (None, an int, a tuple of ints); on another library's arrays they are
normalised first (``autodag.axes.checked_axes``), as the standard's functions take only
distinct axes in range. median has no standard function: it sorts the reduced axes,
moved last and merged into one, and picks the middle (one code for every library).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

import numpy as np

from autodag import ArgumentError, Node, OpDef, Sample, ShapeMismatchError
from autodag.axes import checked_axes as _checked_axes
from autodag.backend import namespace_of
from autodag.shapes import StaticShapes

from ._xp import float_dtype, floated, foreign, reshape, shape_of
from .reductions import _mean_grad, _reduction_samples, keepdims_form

__all__ = ["ARGMAX", "ARGMIN", "AVERAGE", "AVERAGE_GRAD", "MEDIAN", "MEDIAN_WEIGHTS", "MIN",
           "PTP", "STD", "VAR"]

_Rng = np.random.Generator


def _guarded(op: str, np_call: Callable[..., Any], xp_call: Callable[..., Any],
             legacy: bool) -> Callable[..., Any]:
    """A reduction's forward: NumPy's on NumPy values, ``xp_call(xp, a, axes, **attrs)``
    on another library's, and an axis NumPy refuses named in a ShapeMismatchError."""

    def forward(a: Any, axis: Any, **attrs: Any) -> Any:
        try:
            if foreign(a):
                axes = _checked_axes(op, axis, shape_of(a), legacy=legacy)
                return xp_call(namespace_of(a), a, axes, **attrs)
            return np_call(a, axis=axis, **attrs)
        except (TypeError, ValueError):
            _checked_axes(op, axis, shape_of(a), legacy=legacy)
            raise  # not the axis: NumPy's own error

    return forward


def _counts(xp: Any, a: Any, axis: Any) -> Any:
    """The number of elements each output of a reduction over ``axis`` reads, shaped with
    the reduced axes kept: taken from ``a`` at run time, so the rule needs no shape."""
    return xp.sum(xp.seed_like(a), axis=axis, keepdims=True)


# --- forward rules on other libraries' arrays -----------------------------------------
def _xp_var(xp: Any, a: Any, axes: Any, ddof: Any, keepdims: bool) -> Any:
    return xp.var(floated(xp, a), axis=axes, correction=ddof, keepdims=keepdims)


def _xp_std(xp: Any, a: Any, axes: Any, ddof: Any, keepdims: bool) -> Any:
    return xp.std(floated(xp, a), axis=axes, correction=ddof, keepdims=keepdims)


def _xp_ptp(xp: Any, a: Any, axes: Any, keepdims: bool) -> Any:
    return xp.max(a, axis=axes, keepdims=keepdims) - xp.min(a, axis=axes, keepdims=keepdims)


def _middle(xp: Any, a: Any, axes: tuple[int, ...]) -> tuple[Any, Any]:
    """The lower and upper middle values of ``a`` over ``axes`` (equal for an odd count),
    shaped with the reduced axes kept."""
    shape = shape_of(a)
    rest = [i for i in range(len(shape)) if i not in axes]
    t = xp.permute_dims(a, (*rest, *sorted(axes))) if shape else a
    k = math.prod(shape[i] for i in axes)
    s = xp.sort(reshape(xp, t, (*(shape[i] for i in rest), k)), axis=-1)
    kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
    lo, hi = s[..., (k - 1) // 2], s[..., k // 2]
    return reshape(xp, lo, kept), reshape(xp, hi, kept)


def _xp_median(xp: Any, a: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    lo, hi = _middle(xp, floated(xp, a), axes)
    med = (lo + hi) / 2
    if keepdims:
        return med
    return reshape(xp, med, tuple(n for i, n in enumerate(shape_of(a)) if i not in axes))


def _median_weights(a: Any, axis: Any) -> Any:
    xp = namespace_of(a) if foreign(a) else np
    if xp is np:
        a = np.asarray(a)
    axes = _checked_axes("median_weights", axis, shape_of(a))
    lo, hi = _middle(xp, a, axes)
    dt = float_dtype(xp, a)
    at_lo = xp.astype(a == lo, dt)
    at_hi = xp.astype(a == hi, dt)
    # Half to each middle value (all to the one of an odd count), shared by its ties.
    return (at_lo / xp.sum(at_lo, axis=axes, keepdims=True)
            + at_hi / xp.sum(at_hi, axis=axes, keepdims=True)) / 2


def _argext(op: str, np_fn: Callable[..., Any]) -> Callable[..., Any]:
    def forward(a: Any, axis: Any, keepdims: bool) -> Any:
        if not foreign(a):
            return np_fn(a, axis=axis, keepdims=keepdims)
        xp = namespace_of(a)
        if axis is None:
            return getattr(xp, op)(a, keepdims=keepdims)
        axes = _checked_axes(op, axis, shape_of(a), tuples=False, legacy=True)
        return getattr(xp, op)(a, axis=axes[0] if axes else None, keepdims=keepdims)

    return forward


# --- average: weights are a static attribute, normalised once ---------------------------
def _normalised(weights: Any, shape: tuple[int, ...], axis: Any) -> np.ndarray[Any, Any]:
    """``weights`` divided by their sum over ``axis``, shaped to broadcast against an
    input of ``shape`` (a 1-D weight along an int axis, as numpy.average takes it)."""
    w: np.ndarray[Any, Any] = np.asarray(weights, dtype=np.float64)
    if w.shape != shape:
        (ax,) = _checked_axes("average", axis, shape, tuples=False, none=False)
        w = w.reshape((1,) * ax + (-1,) + (1,) * (len(shape) - ax - 1))
        if w.size != shape[ax]:
            raise ValueError(f"average: {w.size} weights for axis {axis} of length "
                             f"{shape[ax]}")
    total = np.sum(w, axis=axis, keepdims=True)
    return np.asarray(w / total)


def _average(a: Any, axis: Any, weights: Any) -> Any:
    if not foreign(a):
        if weights is None:
            return np.average(a, axis=axis)
        a = np.asarray(a)
        wn = _normalised(weights, a.shape, axis).astype(float_dtype(np, a))
        return np.sum(a * wn, axis=axis)
    xp = namespace_of(a)
    shape = shape_of(a)
    axes = _checked_axes("average", axis, shape)
    af = floated(xp, a)
    if weights is None:
        return xp.mean(af, axis=axes)
    return xp.sum(af * xp.asarray(_normalised(weights, shape, axis), dtype=af.dtype), axis=axes)


def _numpy_average(a: Any, axis: Any = None, weights: Any = None, **rest: Any) -> Any:
    """numpy.average(node, ...): the op, or with weights a node (differentiated, so
    not an attribute) sum(a * w) / sum(w) built from ops."""
    import autodag

    ops: Any = autodag.ops
    if not isinstance(weights, Node):
        return ops.average(a, axis=axis, weights=weights, **rest)
    if rest:
        raise ArgumentError(f"numpy.average on nodes with node weights takes a, axis and "
                            f"weights only, not {sorted(rest)}")
    known = StaticShapes()
    shape = known.require(a, "for numpy.average") if isinstance(a, Node) else np.shape(a)
    w_shape = known.require(weights, "for numpy.average's weights")
    w = weights
    if tuple(w_shape) != tuple(shape):
        (ax,) = _checked_axes("average", axis, tuple(shape), tuples=False, none=False)
        if tuple(w_shape) != (shape[ax],):
            raise ShapeMismatchError(
                f"average: weights of shape {tuple(w_shape)} for an input of shape "
                f"{tuple(shape)}: give a's shape, or 1-D along the int axis {axis!r}")
        w = ops.reshape(w, (1,) * ax + (-1,) + (1,) * (len(shape) - ax - 1))
    return ops.sum(a * w, axis=axis) / ops.sum(w, axis=axis)


def _average_grad(g: Any, like: Any, axis: Any, weights: Any) -> Any:
    if weights is None:
        return _mean_grad(g, like, axis, False)
    shape = shape_of(like)
    axes = _checked_axes("average", axis, shape)
    wn = _normalised(weights, shape, axis)
    if not (foreign(g) or foreign(like)):
        ge = np.expand_dims(g, axes) if axis is not None else np.asarray(g)
        return np.broadcast_to(ge * wn.astype(float_dtype(np, ge)), shape)
    xp = namespace_of(g, like)
    ge = floated(xp, g)
    if axis is not None:
        for ax in sorted(axes):
            ge = xp.expand_dims(ge, axis=ax)
    return xp.broadcast_to(ge * xp.asarray(wn, dtype=ge.dtype), shape)


# --- backward rules ---------------------------------------------------------------------
def _var_vjp(xp: Any, g: Any, out: Any, a: Any, axis: Any, ddof: Any, keepdims: bool) -> Any:
    ge = keepdims_form(xp, g, axis, keepdims)
    centred = a - xp.mean(a, axis=axis, keepdims=True)
    return 2 * ge * centred / (_counts(xp, a, axis) - ddof)


def _std_vjp(xp: Any, g: Any, out: Any, a: Any, axis: Any, ddof: Any, keepdims: bool) -> Any:
    ge = keepdims_form(xp, g, axis, keepdims)
    centred = a - xp.mean(a, axis=axis, keepdims=True)
    return ge * centred / ((_counts(xp, a, axis) - ddof) * keepdims_form(xp, out, axis, keepdims))


def _ptp_vjp(xp: Any, g: Any, out: Any, a: Any, axis: Any, keepdims: bool) -> Any:
    share = xp.max_weights(a, axis=axis) - xp.max_weights(-a, axis=axis)
    return keepdims_form(xp, g, axis, keepdims) * share


# --- samples ---------------------------------------------------------------------------
def _min_samples(rng: _Rng) -> list[Sample]:
    ties = np.array([[1.0, -3.0, -3.0], [2.0, 0.5, 0.5]])
    return [*_reduction_samples(rng), Sample((ties,), {"axis": 1}), Sample((ties,))]


def _var_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((3, 4, 2))
    return [
        Sample((x,), {"axis": 1}),
        Sample((x,), {"ddof": 1}),
        Sample((x,), {"axis": (0, 2), "keepdims": True}),
        Sample((x,), {"axis": -1, "ddof": 1}),
        Sample((x[0],)),
    ]


def _average_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((3, 4))
    return [
        Sample((x,), {"axis": 1, "weights": np.array([1.0, 2.0, 0.5, 3.0])}),
        Sample((x,), {"weights": rng.uniform(0.5, 2.0, (3, 4))}),
        Sample((x,), {"axis": 0}),
        Sample((x,)),
        Sample((x,), {"axis": (0, 1), "weights": rng.uniform(0.5, 2.0, (3, 4))}),
    ]


def _average_grad_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((3,)), r((3, 4))), {"axis": 1, "weights": np.array([1.0, 2.0, 0.5, 3.0])}),
        Sample((r(()), r((3, 4))), {"weights": rng.uniform(0.5, 2.0, (3, 4))}),
        Sample((r((4,)), r((3, 4))), {"axis": 0}),
    ]


def _median_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((3, 4, 5))
    return [
        Sample((x,), {"axis": 1}),
        Sample((x,), {"axis": 2}),
        Sample((x,)),
        Sample((x,), {"axis": (0, 2), "keepdims": True}),
        Sample((x[0, 0],), {"keepdims": True}),
    ]


def _median_weights_samples(rng: _Rng) -> list[Sample]:
    ties = np.array([[1.0, 2.0, 2.0, 0.0], [3.0, 1.0, 2.0, 5.0]])
    x = rng.standard_normal((3, 4))
    return [Sample((x,), {"axis": 1}), Sample((x,)), Sample((ties,), {"axis": -1})]


def _arg_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((3, 4))
    return [Sample((x,)), Sample((x,), {"axis": 1}), Sample((x,), {"axis": 0, "keepdims": True})]


_AXIS_DOC: Final = (
    "axis is None (every axis), an int or a tuple of ints, negative counting from the "
    "end; keepdims keeps the reduced axes as length 1."
)
_RED: Final = {"axis": None, "keepdims": False}
_DDOF: Final = {"axis": None, "ddof": 0, "keepdims": False}


def _op(name: str, forward: Callable[..., Any], rule: Callable[..., Any] | None,
        attrs: dict[str, Any], samples: Callable[[_Rng], list[Sample]], doc: str) -> OpDef:
    return OpDef(name=name, arity=1, forward=forward,
                 backward=None if rule is None else (rule,), attributes=attrs,
                 input_names=("a",), samples=samples, doc=doc, array_api=True)


MIN: Final = _op(
    "min", _guarded("min", np.min, lambda xp, a, axes, keepdims: xp.min(a, axis=axes,
                                                                         keepdims=keepdims),
                    legacy=True),
    lambda xp, g, out, a, axis, keepdims: keepdims_form(xp, g, axis, keepdims)
    * xp.max_weights(-a, axis=axis),
    _RED, _min_samples,
    "Minimum over axis, as numpy.min; ties share the gradient evenly. " + _AXIS_DOC,
)
PTP: Final = _op(
    "ptp", _guarded("ptp", np.ptp, _xp_ptp, legacy=True), _ptp_vjp, _RED, _min_samples,
    "max - min over axis, as numpy.ptp; ties share the gradient evenly. " + _AXIS_DOC,
)
VAR: Final = _op(
    "var", _guarded("var", np.var, _xp_var, legacy=False), _var_vjp, _DDOF, _var_samples,
    "Variance over axis with ddof delta degrees of freedom, as numpy.var. " + _AXIS_DOC,
)
STD: Final = _op(
    "std", _guarded("std", np.std, _xp_std, legacy=False), _std_vjp, _DDOF, _var_samples,
    "Standard deviation over axis (ddof as in var), as numpy.std; its gradient is "
    "infinite where it is 0. " + _AXIS_DOC,
)
MEDIAN: Final = _op(
    "median", _guarded("median", np.median, _xp_median, legacy=False),
    lambda xp, g, out, a, axis, keepdims: keepdims_form(xp, g, axis, keepdims)
    * xp.median_weights(a, axis=axis),
    _RED, _median_samples,
    "Median over axis, as numpy.median: the gradient goes to the middle element (half "
    "to each of the two middle ones of an even count; ties share). " + _AXIS_DOC,
)
MEDIAN_WEIGHTS: Final = _op(
    "median_weights", _median_weights, None, {"axis": None}, _median_weights_samples,
    "Where a holds its median over axis, the share of the median's gradient (not "
    "differentiable).",
)
AVERAGE: Final = replace(_op(
    "average", _average,
    lambda xp, g, out, a, axis, weights: xp.average_grad(g, a, axis=axis, weights=weights),
    {"axis": None, "weights": None}, _average_samples,
    "Weighted average over axis, as numpy.average (in the input's float dtype). weights "
    "(None: the mean) is a static attribute: an array of a's shape, or 1-D along an int "
    "axis, not differentiated (numpy.average with node weights differentiates them).",
), numpy_function=_numpy_average)
AVERAGE_GRAD: Final = OpDef(
    name="average_grad", arity=2, attributes={"axis": None, "weights": None},
    forward=_average_grad,
    backward=(lambda xp, h, out, g, like, axis, weights: xp.average(h, axis=axis,
                                                                     weights=weights), None),
    samples=_average_grad_samples, array_api=True,
    doc="The gradient of average: g spread over `like` by the normalised weights.",
)
ARGMAX: Final = _op(
    "argmax", _argext("argmax", np.argmax), None, _RED, _arg_samples,
    "Index of the maximum along axis (None: of the flattened input), as numpy.argmax; "
    "not differentiable (no gradient flows through it).",
)
ARGMIN: Final = _op(
    "argmin", _argext("argmin", np.argmin), None, _RED, _arg_samples,
    "Index of the minimum along axis (None: of the flattened input), as numpy.argmin; "
    "not differentiable (no gradient flows through it).",
)
