"""The ``nn`` plugin: activations, softmax family, log-sum-exp, softmax cross-entropy;
with more activations, one_hot and layer_norm in :mod:`.activations`, convolutions in
:mod:`.conv` and pooling in :mod:`.pool`, registered by the same hook.

Forward rules are NumPy and numerically stable: nothing overflows or turns into NaN at
inputs of +-1000. Axes are taken as scipy.special takes them (None, an int, a tuple of
ints; the class axis of softmax_cross_entropy is one int); one NumPy would refuse is a
``ShapeMismatchError`` naming the op, the axis and the input's shape.

Backward rules use Python operators and ``xp.<op>`` only, with ops of autodag-math
(``exp``, ``where``, ``greater``) and autodag-array (``sum``), so each op can be
differentiated again.

Every op of ``OPS`` runs on any array-API backend (``array_api=True``); ``NUMPY_OPS``
(gelu and its gradient) are NumPy only: they need erf, which no standard function gives.
NumPy arrays and Python numbers take the NumPy code (in-place passes, fused
reductions); another library's arrays the ``_xp_*`` form beside it, the same formulas
in the standard's functions of their own namespace, never converted to NumPy and, on a
lazy library (Dask), never computed: integer labels out of range, which NumPy values
refuse with a ValueError, give NaN there instead (checking them would compute them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np

import autodag
from autodag import OpDef, Sample, ShapeMismatchError
from autodag.axes import checked_axes as _checked_axes
from autodag.backend import is_array, namespace_of

from .activations import ACTIVATION_OPS
from .conv import CONV_OPS
from .onnx_rules import autodag_onnx_converters as autodag_onnx_converters
from .pool import POOL_OPS

__all__ = ["NUMPY_OPS", "OPS", "autodag_register_ops"]

_Rng = np.random.Generator
_PY_NUMBERS: Final = (bool, int, float, complex)
# The classes of NumPy's and Python's values: one set lookup finds the NumPy fast path
# (``is_array`` asks more, for the rest: subclasses, lists, other libraries' arrays).
_NUMPY: Final = frozenset({np.ndarray, bool, int, float, complex, *np.sctypeDict.values()})


# --- forward rules ------------------------------------------------------------------
def _relu(a: Any) -> Any:
    if type(a) is float:
        return a if a > 0.0 else 0.0
    if a.__class__ not in _NUMPY and is_array(a):
        return namespace_of(a).maximum(a, 0)
    return np.maximum(a, 0)


def _sigmoid(a: Any) -> Any:
    if a.__class__ not in _NUMPY and is_array(a):
        return _xp_sigmoid(a)
    x = np.asarray(a)
    e = np.exp(-np.abs(x))  # never overflows: the exponent is <= 0
    r = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(e.dtype, copy=False)
    return r if r.ndim else r[()]


def _softplus(a: Any) -> Any:
    if a.__class__ not in _NUMPY and is_array(a):
        xp = namespace_of(a)
        x = _xp_floating(xp, a)
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
    x = np.asarray(a)
    r = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
    return r if r.ndim else r[()]


def _class_axis(op: str, axis: Any, z: Any) -> int:
    """The class axis of logits ``z`` (an array), normalised: exactly one axis, which ``z``
    must have."""
    ndim = z.ndim
    if ndim and axis.__class__ is int and -ndim <= axis < ndim:
        return int(axis % ndim)  # the common call, without the checks' cost
    shape = z.shape
    if not shape:
        raise ShapeMismatchError(
            f"{op}: logits of shape () have no class axis (axis={axis!r}); the classes "
            f"lie along one axis of the logits")
    (ax,) = _checked_axes(op, axis, shape, tuples=False, none=False, legacy=False)
    return ax


def _floating(a: Any) -> Any:
    # An array, for the in-place passes below; integers are computed in float64.
    x = np.asarray(a)
    return x if x.dtype.kind in "fc" else x.astype(np.float64)


def _reduce_kept(ufunc: Any, x: Any, axes: tuple[int, ...]) -> Any:
    """``ufunc.reduce(x, axes, keepdims=True)``. For a batch of short rows (classes
    along the last axis), through a contiguous transposed copy: NumPy reduces many
    short rows about four times slower than a few long ones."""
    if x.ndim == 2 and axes == (1,) and x.shape[1] <= 64 and x.shape[0] >= 32:
        return ufunc.reduce(np.ascontiguousarray(x.T), axis=0).reshape(-1, 1)
    # Every axis as None: NumPy reduces a tuple of all the axes more slowly.
    return ufunc.reduce(x, axis=None if len(axes) == x.ndim else axes, keepdims=True)


def _lse(x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    """logsumexp of a floating array over distinct non-negative axes."""
    if not axes:
        # Over no axes each element is its own sum, and log(exp(x)) is x (inf included).
        r = x.copy()
        return r if r.ndim else r[()]
    m = _reduce_kept(np.maximum, x, axes)
    if np.isfinite(m).all():
        # The usual case, in as few passes as it takes: x - m <= 0 cannot overflow and
        # the sum is at least 1 (the maximum's own term), so nothing can warn. x has an
        # axis to reduce, so t and r are arrays (in-place operations need them).
        t = x - m
        np.exp(t, out=t)
        r = _reduce_kept(np.add, t, axes)
        np.log(r, out=r)
        r += m
    else:
        m = np.where(np.isfinite(m), m, 0)  # all -inf along the axis: log(0) = -inf, no NaN
        with np.errstate(divide="ignore"):
            r = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    if not keepdims:
        # Every axis as None: each is reduced to length 1, and NumPy checks no tuple.
        r = np.squeeze(r, axis=None if len(axes) == r.ndim else axes)
    return r if r.ndim else r[()]


def _logsumexp(a: Any, axis: Any, keepdims: bool) -> Any:
    if a.__class__ not in _NUMPY and is_array(a):
        xp = namespace_of(a)
        x = _xp_floating(xp, a)
        axes = _checked_axes("logsumexp", axis, tuple(x.shape), legacy=True)
        return _xp_lse(xp, x, axes, keepdims)
    x = _floating(a)
    return _lse(x, _checked_axes("logsumexp", axis, x.shape, legacy=True), keepdims)


def _log_softmax(a: Any, axis: Any) -> Any:
    if a.__class__ not in _NUMPY and is_array(a):
        xp = namespace_of(a)
        x = _xp_floating(xp, a)
        axes = _checked_axes("log_softmax", axis, tuple(x.shape), legacy=True)
        return x - _xp_lse(xp, x, axes, True)
    x = _floating(a)
    return x - _lse(x, _checked_axes("log_softmax", axis, x.shape, legacy=True), True)


def _softmax(a: Any, axis: Any) -> Any:
    if a.__class__ not in _NUMPY and is_array(a):
        xp = namespace_of(a)
        x = _xp_floating(xp, a)
        return _xp_softmax(xp, x, _checked_axes("softmax", axis, tuple(x.shape), legacy=True))
    try:
        e = np.exp(a - np.max(a, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)
    except (TypeError, ValueError):
        # NumPy refused the axis or the input; name the axis if it is the axis.
        _checked_axes("softmax", axis, np.shape(a), legacy=True)
        raise


def _with_axis(a: Any, ax: int) -> Any:
    """``np.expand_dims(a, ax)`` for an array and a normalised axis, without its checks."""
    return a.reshape((*a.shape[:ax], 1, *a.shape[ax:]))


def _class_index(y: Any, z: Any, ax: int) -> Any:
    """Integer labels checked against the logits, with the class axis ``ax`` (normalised)
    put back (length 1)."""
    n = z.shape[ax]
    if y.shape != z.shape[:ax] + z.shape[ax + 1:]:
        raise ValueError(
            f"softmax_cross_entropy: integer labels of shape {y.shape} do not match "
            f"logits of shape {z.shape} without axis {ax}"
        )
    if y.size and (y.min() < 0 or y.max() >= n):
        raise ValueError(
            f"softmax_cross_entropy: class indices must be in [0, {n}), got "
            f"{y.min()}..{y.max()}"
        )
    return _with_axis(y, ax)


def _one_hot(index: Any, n: int, ndim: int, ax: int) -> Any:
    classes = np.arange(n).reshape((n,) + (1,) * (ndim - ax - 1))
    return index == classes


def _check_probs(y: Any, z: Any) -> None:
    if y.shape != z.shape:
        raise ValueError(
            f"softmax_cross_entropy: probability labels of shape {y.shape} must have the "
            f"logits' shape {z.shape} (or pass integer class indices)"
        )


def _class_probs(labels: Any, logits: Any, axis: Any) -> Any:
    """Integer class indices as one-hot rows shaped like ``logits``; probabilities as given."""
    if ((labels.__class__ not in _NUMPY and is_array(labels))
            or (logits.__class__ not in _NUMPY and is_array(logits))):
        return _xp_class_probs(labels, logits, axis)
    z = np.asarray(logits)
    ax = _class_axis("class_probs", axis, z)
    y = np.asarray(labels)
    dtype = z.dtype if z.dtype.kind == "f" else np.dtype(np.float64)
    if y.dtype.kind in "biu":
        return _one_hot(_class_index(y, z, ax), z.shape[ax], z.ndim, ax).astype(dtype)
    _check_probs(y, z)
    return y


def _pick(z: Any, index: Any, ax: int) -> Any:
    """``np.take_along_axis(z, index, ax)``; for a batch of rows, by plain indexing,
    which costs a quarter as much on small arrays."""
    if z.ndim == 2 and ax == 1:
        return z[np.arange(z.shape[0]), index[:, 0]][:, None]
    return np.take_along_axis(z, index, ax)


def _softmax_cross_entropy(logits: Any, labels: Any, axis: Any) -> Any:
    if ((logits.__class__ not in _NUMPY and is_array(logits))
            or (labels.__class__ not in _NUMPY and is_array(labels))):
        return _xp_softmax_cross_entropy(logits, labels, axis)
    z = _floating(logits)
    ax = _class_axis("softmax_cross_entropy", axis, z)
    y = np.asarray(labels)
    if y.dtype.kind in "biu":
        # Integer labels pick one log-probability each: no one-hot product to form.
        r = np.squeeze(_lse(z, (ax,), True) - _pick(z, _class_index(y, z, ax), ax), axis=ax)
    else:
        _check_probs(y, z)
        r = -np.sum(y * (z - _lse(z, (ax,), True)), axis=ax)
    return r if np.ndim(r) else r[()]


def _sce_grad(g: Any, logits: Any, labels: Any, axis: Any) -> Any:
    """``g * (softmax(logits) * sum(labels) - labels)``, one softmax and in place."""
    if ((g.__class__ not in _NUMPY and is_array(g))
            or (logits.__class__ not in _NUMPY and is_array(logits))
            or (labels.__class__ not in _NUMPY and is_array(labels))):
        return _xp_sce_grad(g, logits, labels, axis)
    z = _floating(logits)
    ax = _class_axis("sce_grad", axis, z)
    y = np.asarray(labels)
    ge = _with_axis(np.asarray(g), ax)
    if y.dtype.kind in "biu":
        # g * softmax - g * one_hot: g is folded into the softmax's per-row divisor and
        # subtracted only where the label is, without a one-hot array to subtract.
        index = _class_index(y, z, ax)
        s = z - _reduce_kept(np.maximum, z, (ax,))
        np.exp(s, out=s)
        f = ge / _reduce_kept(np.add, s, (ax,))
        s *= f
        classes = np.arange(z.shape[ax]).reshape((-1,) + (1,) * (z.ndim - ax - 1))
        np.subtract(s, ge, out=s, where=index == classes)
        return s
    _check_probs(y, z)
    s = _softmax(z, ax)
    s *= np.sum(y, axis=ax, keepdims=True)
    s -= y
    s *= ge
    return s


def _float_only(h: Any, labels: Any) -> Any:
    if ((h.__class__ not in _NUMPY and is_array(h))
            or (labels.__class__ not in _NUMPY and is_array(labels))):
        xp = namespace_of(h, labels)
        if _xp_integral(xp, labels):
            return xp.zeros((), dtype=_xp_float_dtype(xp, h))  # class indices: no gradient
        return h
    if np.result_type(labels).kind in "biu":
        return np.zeros((), dtype=np.result_type(h))  # class indices: no gradient
    return h


# --- forward rules on another library's arrays --------------------------------------
# The NumPy code above is the fast path; these are its formulas in the standard's
# functions, without in-place passes (not every library writes into arrays) and without
# branching on values (a lazy library would have to compute them to branch).
def _xp_float_dtype(xp: Any, x: Any) -> Any:
    if x.__class__ in _PY_NUMBERS:
        return xp.float64
    dt = x.dtype
    return dt if xp.isdtype(dt, ("real floating", "complex floating")) else xp.float64


def _xp_floating(xp: Any, a: Any) -> Any:
    """``a`` as an array of ``xp`` in floating point (integers in float64, as NumPy)."""
    dt = _xp_float_dtype(xp, a)
    if a.__class__ in _PY_NUMBERS or isinstance(a, np.generic):
        return xp.asarray(a, dtype=dt)
    return a if a.dtype == dt else xp.astype(a, dt)


def _xp_integral(xp: Any, labels: Any) -> bool:
    """Whether labels are class indices (integers or bools, as NumPy's kinds "biu")."""
    if labels.__class__ in _PY_NUMBERS:
        return labels.__class__ is not float and labels.__class__ is not complex
    return bool(xp.isdtype(labels.dtype, ("integral", "bool")))


def _xp_sigmoid(a: Any) -> Any:
    xp = namespace_of(a)
    x = _xp_floating(xp, a)
    e = xp.exp(-xp.abs(x))  # never overflows: the exponent is <= 0
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _xp_lse(xp: Any, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    """logsumexp of a floating array over distinct non-negative axes (over none, each
    element is its own: log(exp(x - x)) + x is x exactly, infinities included)."""
    m = xp.max(x, axis=axes, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)  # all -inf along the axis: log(0) = -inf, no NaN
    r = xp.log(xp.sum(xp.exp(x - m), axis=axes, keepdims=True)) + m
    return r if keepdims else xp.squeeze(r, axis=axes)


def _xp_softmax(xp: Any, x: Any, axes: tuple[int, ...]) -> Any:
    e = xp.exp(x - xp.max(x, axis=axes, keepdims=True))
    return e / xp.sum(e, axis=axes, keepdims=True)


def _lazy(x: Any) -> bool:
    """Whether ``x`` is an array its library computes only when asked (Dask)."""
    import array_api_compat

    return bool(array_api_compat.is_lazy_array(x))


def _xp_labels(xp: Any, labels: Any) -> Any:
    if labels.__class__ in _PY_NUMBERS or isinstance(labels, np.generic):
        return xp.asarray(labels)
    return labels


def _xp_one_hot(op: str, xp: Any, y: Any, z: Any, ax: int) -> tuple[Any, Any]:
    """Integer labels ``y`` as a boolean one-hot array shaped like the logits ``z``
    (class axis ``ax``), and None, or, for lazy labels, whether each is a class.

    The labels' shape is checked as on NumPy, and so is their range where they are
    computed already (NumPy labels beside Dask logits included). Checking lazy labels
    would compute them: the caller marks the results of out-of-range ones NaN instead,
    with the second value (shaped like ``y``)."""
    shape, n = tuple(z.shape), z.shape[ax]
    if tuple(y.shape) != shape[:ax] + shape[ax + 1:]:
        raise ValueError(
            f"{op}: integer labels of shape {tuple(y.shape)} do not match logits of "
            f"shape {shape} without axis {ax}")
    if y.__class__ is np.ndarray:
        _class_index(y, z, ax)  # the range check, by NumPy on NumPy data
    elif xp.isdtype(y.dtype, "bool"):
        y = xp.astype(y, xp.int64)
    valid = None
    if _lazy(y):
        valid = (y >= 0) & (y < n)
    elif y.__class__ is not np.ndarray and math.prod(y.shape) and not xp.all(
            (y >= 0) & (y < n)):
        raise ValueError(
            f"{op}: class indices must be in [0, {n}), got {int(xp.min(y))}..{int(xp.max(y))}")
    # The classes in the labels' own integer dtype: strict libraries compare no others.
    dtype = y.dtype if xp.isdtype(y.dtype, "integral") else None
    classes = xp.reshape(xp.arange(n, dtype=dtype), (n,) + (1,) * (len(shape) - ax - 1))
    return xp.expand_dims(y, axis=ax) == classes, valid


def _xp_check_probs(op: str, y: Any, z: Any) -> None:
    if tuple(y.shape) != tuple(z.shape):
        raise ValueError(
            f"{op}: probability labels of shape {tuple(y.shape)} must have the "
            f"logits' shape {tuple(z.shape)} (or pass integer class indices)")


def _xp_class_probs(labels: Any, logits: Any, axis: Any) -> Any:
    xp = namespace_of(labels, logits)
    z = _xp_labels(xp, logits)
    ax = _class_axis("class_probs", axis, z)
    y = _xp_labels(xp, labels)
    if _xp_integral(xp, y):
        hot, valid = _xp_one_hot("softmax_cross_entropy", xp, y, z, ax)
        probs = xp.astype(hot, _xp_float_dtype(xp, z))
        if valid is not None:
            probs = xp.where(xp.expand_dims(valid, axis=ax), probs, xp.nan)
        return probs
    _xp_check_probs("softmax_cross_entropy", y, z)
    return y


def _xp_softmax_cross_entropy(logits: Any, labels: Any, axis: Any) -> Any:
    xp = namespace_of(logits, labels)
    z = _xp_floating(xp, logits)
    ax = _class_axis("softmax_cross_entropy", axis, z)
    y = _xp_labels(xp, labels)
    lse = _xp_lse(xp, z, (ax,), True)
    if _xp_integral(xp, y):
        hot, valid = _xp_one_hot("softmax_cross_entropy", xp, y, z, ax)
        # The picked logit as a masked sum: where(), not a product, so that an -inf logit
        # of another class adds 0, not NaN.
        picked = xp.sum(xp.where(hot, z, 0), axis=ax, keepdims=True)
        r = xp.squeeze(lse - picked, axis=ax)
        return r if valid is None else xp.where(valid, r, xp.nan)
    _xp_check_probs("softmax_cross_entropy", y, z)
    return -xp.sum(y * (z - lse), axis=ax)


def _xp_sce_grad(g: Any, logits: Any, labels: Any, axis: Any) -> Any:
    xp = namespace_of(g, logits, labels)
    z = _xp_floating(xp, logits)
    ax = _class_axis("sce_grad", axis, z)
    y = _xp_labels(xp, labels)
    # g in the logits' dtype: NumPy's in-place passes keep it so.
    ge = xp.expand_dims(_xp_floating(xp, g) if g.__class__ in _PY_NUMBERS else g, axis=ax)
    if ge.dtype != z.dtype:
        ge = xp.astype(ge, z.dtype)
    s = _xp_softmax(xp, z, (ax,))
    if _xp_integral(xp, y):
        hot, valid = _xp_one_hot("sce_grad", xp, y, z, ax)
        r = ge * s - xp.where(hot, ge, 0)
        if valid is not None:
            r = xp.where(xp.expand_dims(valid, axis=ax), r, xp.nan)
        return r
    _xp_check_probs("softmax_cross_entropy", y, z)
    return ge * (s * xp.sum(y, axis=ax, keepdims=True) - y)


# --- backward rules -----------------------------------------------------------------
def _keepdims_form(xp: Any, g: Any, axis: Any, keepdims: bool) -> Any:
    if keepdims or axis is None:
        return g
    return xp.expand_dims(g, axis)


def _softmax_vjp(xp: Any, g: Any, out: Any, a: Any, axis: Any) -> Any:
    return out * (g - xp.sum(g * out, axis=axis, keepdims=True))


def _log_softmax_vjp(xp: Any, g: Any, out: Any, a: Any, axis: Any) -> Any:
    return g - xp.exp(out) * xp.sum(g, axis=axis, keepdims=True)


def _logsumexp_vjp(xp: Any, g: Any, out: Any, a: Any, axis: Any, keepdims: bool) -> Any:
    ge = _keepdims_form(xp, g, axis, keepdims)
    oe = _keepdims_form(xp, out, axis, keepdims)
    return ge * xp.exp(a - oe)  # a - oe <= 0: cannot overflow


def _sce_logits_vjp(xp: Any, g: Any, out: Any, logits: Any, labels: Any, axis: int) -> Any:
    return xp.sce_grad(g, logits, labels, axis=axis)


def _sce_labels_vjp(xp: Any, g: Any, out: Any, logits: Any, labels: Any, axis: int) -> Any:
    return xp.float_only(-xp.expand_dims(g, axis) * xp.log_softmax(logits, axis=axis), labels)


def _sce_grad_g_vjp(xp: Any, h: Any, out: Any, g: Any, logits: Any, labels: Any,
                    axis: int) -> Any:
    y = xp.class_probs(labels, logits, axis=axis)
    d = xp.softmax(logits, axis=axis) * xp.sum(y, axis=axis, keepdims=True) - y
    return xp.sum(h * d, axis=axis)


def _sce_grad_logits_vjp(xp: Any, h: Any, out: Any, g: Any, logits: Any, labels: Any,
                         axis: int) -> Any:
    y = xp.class_probs(labels, logits, axis=axis)
    u = h * xp.expand_dims(g, axis) * xp.sum(y, axis=axis, keepdims=True)
    return _softmax_vjp(xp, u, xp.softmax(logits, axis=axis), logits, axis)


def _sce_grad_labels_vjp(xp: Any, h: Any, out: Any, g: Any, logits: Any, labels: Any,
                         axis: int) -> Any:
    s = xp.softmax(logits, axis=axis)
    d = xp.expand_dims(g, axis) * (xp.sum(h * s, axis=axis, keepdims=True) - h)
    return xp.float_only(d, labels)


# --- sample inputs for autodag.testing.check_op -------------------------------------
def _unary_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((3 * r((2, 3)),)), Sample((r(()),)), Sample((r((4, 1, 2)),))]


def _relu_samples(rng: _Rng) -> list[Sample]:
    return [Sample((np.sign(s.inputs[0]) * (np.abs(s.inputs[0]) + 0.1),))
            for s in _unary_samples(rng)]


def _axis_samples(rng: _Rng) -> list[Sample]:
    x = 3 * rng.standard_normal((2, 3, 4))
    return [Sample((x,)), Sample((x,), {"axis": 0}), Sample((x,), {"axis": 1}),
            Sample((rng.standard_normal((5,)),)), Sample((x,), {"axis": (-1, 0)}),
            Sample((x,), {"axis": None}), Sample((x,), {"axis": ()}),
            Sample((rng.standard_normal(()),)),
            Sample((3 * rng.standard_normal((32, 3)),), {"axis": (1,)})]


def _logsumexp_samples(rng: _Rng) -> list[Sample]:
    x = 3 * rng.standard_normal((2, 3, 4))
    return [
        Sample((x,)), Sample((x,), {"axis": -1}), Sample((x,), {"axis": (0, 2)}),
        Sample((x,), {"axis": 1, "keepdims": True}), Sample((x,), {"keepdims": True}),
        Sample((x,), {"axis": (2, -3, 1)}), Sample((x,), {"axis": ()}),
        Sample((x[0],), {"axis": (0, 1)}),  # the example
        Sample((3 * rng.standard_normal(()),)),
        Sample((3 * rng.standard_normal((32, 3)),), {"axis": -1}),  # a batch of rows
        Sample((3 * rng.standard_normal((32, 3)),), {"axis": (1,), "keepdims": True}),
    ]


def _sce_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    logits = 2 * r((4, 3))
    probs = np.exp(r((4, 3)))
    probs /= probs.sum(axis=-1, keepdims=True)
    return [
        Sample((logits, np.array([0, 2, 1, 2]))),
        Sample((logits, probs)),
        Sample((2 * r((3, 5, 2)), np.array([[0, 1], [4, 4], [2, 0]])), {"axis": 1}),
        Sample((2 * r((5,)), np.array(3))),
        Sample((logits, np.array([0, 1, 1])), {"axis": -2}),
    ]


def _sce_grad_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    probs = np.exp(r((4, 3)))  # not normalised: sum(labels) enters the gradient
    return [
        Sample((r((4,)), 2 * r((4, 3)), np.array([0, 2, 1, 2])), {"axis": -1}),
        Sample((r((4,)), 2 * r((4, 3)), probs), {"axis": -1}),
        Sample((r((3, 2)), 2 * r((3, 5, 2)), np.array([[0, 1], [4, 4], [2, 0]])),
               {"axis": 1}),
        Sample((r(()), 2 * r((5,)), np.array(3)), {"axis": -1}),
    ]


def _class_probs_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((np.array([1, 0, 2]), r((3, 3)))),
            Sample((r((2, 3)), r((2, 3))))]


def _float_only_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((2, 3)), r((2, 3)))), Sample((r((2, 3)), np.array([0, 1])))]


_AXIS_DOC: Final = (
    "axis is an int (the last axis by default, as in deep-learning libraries; scipy's "
    "default is None), None for every axis, or a tuple of ints in any order, negative "
    "ones counting from the end; () normalises each element on its own. An axis out of "
    "range or named twice is a ShapeMismatchError."
)


def _unary(name: str, forward: Callable[..., Any], rule: Callable[..., Any],
           samples: Callable[[_Rng], list[Sample]], doc: str) -> OpDef:
    return OpDef(name=name, arity=1, forward=forward, backward=(rule,), input_names=("x",),
                 samples=samples, doc=doc, array_api=True)


OPS: Final[tuple[OpDef, ...]] = (
    _unary("relu", _relu, lambda xp, g, out, a: xp.where(xp.greater(a, 0), g, 0),
           _relu_samples, "max(x, 0), elementwise; the gradient at 0 is 0."),
    _unary("sigmoid", _sigmoid, lambda xp, g, out, a: g * out * (1 - out), _unary_samples,
           "1 / (1 + exp(-x)), elementwise, without overflow."),
    _unary("softplus", _softplus, lambda xp, g, out, a: g * xp.sigmoid(a), _unary_samples,
           "log(1 + exp(x)), elementwise, without overflow."),
    OpDef(name="softmax", arity=1, attributes={"axis": -1}, forward=_softmax,
          backward=(_softmax_vjp,), input_names=("x",), samples=_axis_samples, array_api=True,
          doc="exp(x) / sum(exp(x)) over axis, computed stably, as "
              "scipy.special.softmax: " + _AXIS_DOC),
    OpDef(name="log_softmax", arity=1, attributes={"axis": -1}, forward=_log_softmax,
          backward=(_log_softmax_vjp,), input_names=("x",), samples=_axis_samples, array_api=True,
          doc="x - logsumexp(x) over axis, computed stably, as "
              "scipy.special.log_softmax: " + _AXIS_DOC),
    OpDef(name="logsumexp", arity=1, attributes={"axis": None, "keepdims": False},
          forward=_logsumexp, backward=(_logsumexp_vjp,), input_names=("a",),
          samples=_logsumexp_samples, array_api=True,
          doc="log(sum(exp(a))) over axis, computed stably, as scipy.special.logsumexp: "
              "axis is None (every axis, the default), an int or a tuple of ints in any "
              "order, negative ones counting from the end; () reduces nothing. keepdims "
              "keeps the reduced axes as length 1."),
    OpDef(name="softmax_cross_entropy", arity=2, attributes={"axis": -1},
          forward=_softmax_cross_entropy, backward=(_sce_logits_vjp, _sce_labels_vjp),
          input_names=("logits", "labels"), samples=_sce_samples, array_api=True,
          doc="Per-example -sum(labels * log_softmax(logits)) along axis, the class "
              "axis: one int (the last by default; negative ones count from the end), "
              "which the logits must have. Labels are integer class indices (shaped like "
              "the logits without that axis) or probabilities shaped like logits."),
    # Helpers that softmax_cross_entropy's rules call through xp.
    OpDef(name="sce_grad", arity=3, attributes={"axis": -1}, forward=_sce_grad,
          backward=(_sce_grad_g_vjp, _sce_grad_logits_vjp, _sce_grad_labels_vjp),
          input_names=("g", "logits", "labels"), samples=_sce_grad_samples, array_api=True,
          doc="g * (softmax(logits) * sum(labels) - labels) along axis, integer labels "
              "one-hot: the gradient of softmax_cross_entropy for its logits."),
    OpDef(name="class_probs", arity=2, attributes={"axis": -1}, forward=_class_probs,
          backward=(lambda xp, h, out, labels, logits, axis: xp.float_only(h, labels), None),
          input_names=("labels", "logits"), samples=_class_probs_samples, array_api=True,
          doc="Integer labels as one-hot rows shaped like logits; probabilities unchanged."),
    OpDef(name="float_only", arity=2, forward=_float_only,
          backward=(lambda xp, h, out, g, labels: xp.float_only(h, labels), None),
          samples=_float_only_samples, array_api=True,
          doc="h when labels are floating, else 0: the gradient reaching labels."),
    # More activations, one_hot and layer_norm (autodag_nn.activations).
    *(op for op in ACTIVATION_OPS if op.array_api),
    # Convolutions, pooling and their gradient helpers (autodag_nn.conv, autodag_nn.pool).
    *CONV_OPS,
    *POOL_OPS,
)

#: The ops whose forward is NumPy only (``array_api=False``): gelu and its gradient,
#: which need erf (activations says why). Kept apart from OPS, every one of which runs on
#: any array-API backend.
NUMPY_OPS: Final[tuple[OpDef, ...]] = tuple(op for op in ACTIVATION_OPS if not op.array_api)


@autodag.hookimpl
def autodag_register_ops() -> list[OpDef]:
    """The ops of autodag-nn."""
    return [*OPS, *NUMPY_OPS]
