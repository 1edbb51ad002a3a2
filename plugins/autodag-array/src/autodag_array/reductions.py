"""Reductions (sum, mean, max) and the helpers their rules use (mean_grad, max_weights).

Ops with an axis take it as their NumPy namesakes do; on NumPy values one NumPy refuses
is checked only once NumPy has refused it, so that a valid call costs nothing more. On
another library's arrays the axis is normalised first (``autodag.axes.checked_axes``),
since the standard's functions take only distinct axes in range.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from autodag import OpDef, Sample
from autodag.axes import checked_axes as _checked_axes
from autodag.backend import broadcast_as, is_array, namespace_of

from ._xp import NUMPY, PY_NUMBERS, float_dtype, floated, foreign, shape_of

__all__ = ["MAX", "MAX_WEIGHTS", "MEAN", "MEAN_GRAD", "SUM"]

_Rng = np.random.Generator


def _float_dtype(x: Any) -> np.dtype[Any]:
    dt = np.result_type(x)
    return dt if dt.kind in "fc" else np.dtype(np.float64)


def keepdims_form(xp: Any, g: Any, axis: Any, keepdims: bool) -> Any:
    """A reduction's output gradient with the reduced axes put back as length 1.

    ``expand_dims`` normalises negative axes against its output, whose rank is the
    reduced input's, so no shape is needed here.
    """
    if keepdims or axis is None:
        return g  # already keepdims-shaped, or 0-d: broadcasts as it is
    return xp.expand_dims(g, axis)


# --- forward rules ----------------------------------------------------------------
_add_reduce: Any = np.add.reduce


def _bad_axis(op: str, axis: Any, a: Any, *, legacy: bool) -> None:
    """Raise the named error if ``axis`` is what NumPy just refused; else return, and the
    caller re-raises NumPy's own error (an empty max, an unsupported dtype)."""
    _checked_axes(op, axis, np.shape(a), legacy=legacy)


# Sum and mean run once per training step on small arrays too, where numpy.sum's
# argument handling costs more than the addition; ndarray methods do the same reduction.
# The axis is checked only once NumPy has refused it, so the common call pays nothing.
def _sum(a: Any, axis: Any, keepdims: bool) -> Any:
    try:
        if a.__class__ is np.ndarray:
            return _add_reduce(a, axis, None, None, keepdims)  # what ndarray.sum calls
        if axis is None and not keepdims and (a.__class__ is float or a.__class__ is int):
            return a  # a Python scalar is its own sum, and stays a Python scalar
        if foreign(a):
            axes = _checked_axes("sum", axis, shape_of(a), legacy=True)
            return namespace_of(a).sum(a, axis=axes, keepdims=keepdims)
        return np.sum(a, axis=axis, keepdims=keepdims)
    except (TypeError, ValueError):
        _bad_axis("sum", axis, a, legacy=True)
        raise


def _mean(a: Any, axis: Any, keepdims: bool) -> Any:
    try:
        if a.__class__ is np.ndarray:
            if axis is None and not keepdims and a.size and (
                    a.dtype == np.float64 or a.dtype == np.float32):
                # What ndarray.mean computes for these dtypes, without its Python layer.
                return _add_reduce(a, None) / a.size
            return a.mean(axis=axis, keepdims=keepdims)
        if axis is None and not keepdims and (a.__class__ is float or a.__class__ is int):
            return float(a)
        if foreign(a):
            axes = _checked_axes("mean", axis, shape_of(a))
            xp = namespace_of(a)
            # The standard's mean takes floating arrays only; NumPy's means are float64.
            return xp.mean(floated(xp, a), axis=axes, keepdims=keepdims)
        return np.mean(a, axis=axis, keepdims=keepdims)
    except (TypeError, ValueError):
        _bad_axis("mean", axis, a, legacy=False)
        raise


def _max(a: Any, axis: Any, keepdims: bool) -> Any:
    try:
        if a.__class__ not in NUMPY and is_array(a):
            axes = _checked_axes("max", axis, shape_of(a), legacy=True)
            return namespace_of(a).max(a, axis=axes, keepdims=keepdims)
        return np.max(a, axis=axis, keepdims=keepdims)
    except (TypeError, ValueError):
        _bad_axis("max", axis, a, legacy=True)
        raise


def _mean_grad(g: Any, like: Any, axis: Any, keepdims: bool) -> Any:
    if ((g.__class__ not in NUMPY and is_array(g))
            or (like.__class__ not in NUMPY and is_array(like))):
        return _xp_mean_grad(g, like, axis, keepdims)
    shape = np.shape(like)
    size = math.prod(shape)
    count = math.prod(shape[ax] for ax in _checked_axes("mean", axis, shape))
    ge = g if keepdims or axis is None else np.expand_dims(g, axis)
    part = np.divide(ge, count) if count else ge
    if np.ndim(part) == 0 and size <= 4096:
        # A scalar spread over a small array: cheaper made than a broadcast view.
        return np.full(shape, part)
    return np.broadcast_to(part, shape)


def _xp_mean_grad(g: Any, like: Any, axis: Any, keepdims: bool) -> Any:
    xp = namespace_of(g, like)
    shape = shape_of(like)
    axes = _checked_axes("mean", axis, shape)
    count = math.prod(shape[ax] for ax in axes)
    if g.__class__ in PY_NUMBERS and not isinstance(g, complex):
        # A loss's seed: spread as a number, which Dask makes inside the tasks reading it.
        return broadcast_as(xp, float(g) / count if count else float(g), like, shape)
    ge = floated(xp, g)  # the standard divides floating arrays only
    if not (keepdims or axis is None):
        for ax in sorted(axes):  # increasing: each an axis of the result, as numpy's tuple
            ge = xp.expand_dims(ge, axis=ax)
    return broadcast_as(xp, ge / count if count else ge, like, shape)


def _max_weights(a: Any, axis: Any) -> Any:
    if a.__class__ not in NUMPY and is_array(a):
        return _xp_max_weights(a, axis)
    top = np.max(a, axis=axis, keepdims=True)
    hit = a == top
    count = np.sum(hit, axis=axis, keepdims=True)
    return np.divide(hit, np.maximum(count, 1), dtype=_float_dtype(a))


def _xp_max_weights(a: Any, axis: Any) -> Any:
    xp = namespace_of(a)
    axes = _checked_axes("max_weights", axis, shape_of(a), legacy=True)
    top = xp.max(a, axis=axes, keepdims=True)
    hit = xp.astype(a == top, float_dtype(xp, a))
    return hit / xp.maximum(xp.sum(hit, axis=axes, keepdims=True), 1)


# --- backward rules ---------------------------------------------------------------
def _sum_vjp(xp: Any, g: Any, out: Any, a: Any, axis: Any, keepdims: bool) -> Any:
    if axis is None:
        return xp.broadcast_like(g, a)  # g has no axes to restore: one call
    return xp.broadcast_like(keepdims_form(xp, g, axis, keepdims), a)


# --- sample inputs for autodag.testing.check_op -------------------------------------
def _reduction_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    x = r((2, 3, 4))
    return [
        Sample((x,)),
        Sample((x,), {"axis": 0}),
        Sample((x,), {"axis": -1}),
        Sample((x,), {"axis": (0, 2)}),
        Sample((x,), {"axis": (-1, 0), "keepdims": True}),
        Sample((x,), {"axis": 1, "keepdims": True}),
        Sample((x,), {"keepdims": True}),
        Sample((x,), {"axis": ()}),
        Sample((r(()),)),
        Sample((r(()),), {"axis": (), "keepdims": True}),
    ]


def _max_samples(rng: _Rng) -> list[Sample]:
    ties = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.5]])
    return [*_reduction_samples(rng), Sample((ties,), {"axis": 1}), Sample((ties,))]


def _unary_samples(rng: _Rng) -> list[Sample]:
    return [Sample((rng.standard_normal((2, 3)),)), Sample((rng.standard_normal(()),))]


def _max_weights_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((2, 3, 4))
    return [*_unary_samples(rng), Sample((x,), {"axis": (0, -1)}), Sample((x,), {"axis": ()})]


def _mean_grad_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((3,)), r((2, 3))), {"axis": 0}),
        Sample((r(()), r((2, 3)))),
        Sample((r((2, 1)), r((2, 3))), {"axis": -1, "keepdims": True}),
        Sample((r((3,)), r((2, 3, 4))), {"axis": (-1, 0)}),
        Sample((r((2, 3)), r((2, 3))), {"axis": ()}),
    ]


_AXIS_DOC: Final = (
    "axis is None (every axis, the default), an int or a tuple of ints in any order, "
    "negative ones counting from the end; () reduces nothing. keepdims keeps the reduced "
    "axes as length 1. An axis out of range or named twice is a ShapeMismatchError."
)


def _reduction(name: str, forward: Callable[..., Any], rule: Callable[..., Any],
               samples: Callable[[_Rng], list[Sample]], doc: str) -> OpDef:
    return OpDef(name=name, arity=1, forward=forward, backward=(rule,),
                 attributes={"axis": None, "keepdims": False}, input_names=("a",),
                 samples=samples, doc=doc, array_api=True)


SUM: Final = _reduction(
    "sum", _sum, _sum_vjp,
    _reduction_samples, "Sum over axis, as numpy.sum. " + _AXIS_DOC,
)
MEAN: Final = _reduction(
    "mean", _mean,
    lambda xp, g, out, a, axis, keepdims: xp.mean_grad(g, a, axis=axis, keepdims=keepdims),
    _reduction_samples, "Arithmetic mean over axis, as numpy.mean. " + _AXIS_DOC
    + " Unlike sum and max (as in NumPy), a 0-d input takes no int axis.",
)
MAX: Final = _reduction(
    "max", _max,
    lambda xp, g, out, a, axis, keepdims: keepdims_form(xp, g, axis, keepdims)
    * xp.max_weights(a, axis=axis),
    _max_samples, "Maximum over axis, as numpy.max; ties share the gradient evenly. "
    + _AXIS_DOC,
)
MEAN_GRAD: Final = OpDef(
    name="mean_grad", arity=2, attributes={"axis": None, "keepdims": False},
    forward=_mean_grad,
    backward=(lambda xp, h, out, g, like, axis, keepdims: xp.mean(h, axis=axis,
                                                                  keepdims=keepdims),
              None),
    samples=_mean_grad_samples, array_api=True,
    doc="The gradient of mean: g spread evenly over the axes of `like` mean reduced.",
)
MAX_WEIGHTS: Final = OpDef(
    name="max_weights", arity=1, attributes={"axis": None}, forward=_max_weights,
    backward=None, samples=_max_weights_samples, array_api=True,
    doc="1/count where a equals its maximum over axis, else 0 (the gradient of max).",
)
