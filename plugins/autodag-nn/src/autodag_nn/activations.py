"""Elementwise activations (gelu, silu, elu, leaky_relu, log_sigmoid), one_hot and
layer_norm, with torch.nn.functional's names and defaults.

Every forward is stable at +-1000: exponentials only ever see non-positive arguments
and nothing overflows or turns into NaN. Backward rules use Python operators and
``xp.<op>`` only, so each op can be differentiated again.

gelu is NumPy only (``array_api=False``): its exact form needs erf, which neither NumPy
nor the array-API standard has, so it is ``math.erf`` applied elementwise (exact to
double precision, not a rational approximation); its gradient helper ``gelu_grad`` is
NumPy only for the same reason. The other ops run on any array-API backend.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from autodag import REQUIRED, OpDef, Sample
from autodag.axes import checked_axes as _checked_axes
from autodag.backend import is_array, namespace_of

from ._windows import numpy_only

__all__ = ["ACTIVATION_OPS"]

_Rng = np.random.Generator
_PY_NUMBERS: Final = (bool, int, float, complex)
_NUMPY: Final = frozenset({np.ndarray, bool, int, float, complex, *np.sctypeDict.values()})
_SQRT_2: Final = math.sqrt(2.0)
_INV_SQRT_2PI: Final = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_C: Final = math.sqrt(2.0 / math.pi)
_TANH_K: Final = 0.044715
_erf: Final = np.vectorize(math.erf, otypes=[np.float64])


def _foreign(a: Any) -> bool:
    return a.__class__ not in _NUMPY and is_array(a)


def _np_float(a: Any) -> Any:
    x = np.asarray(a)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def _xp_float(xp: Any, a: Any) -> Any:
    if a.__class__ in _PY_NUMBERS:
        return xp.asarray(a, dtype=xp.float64)
    return a if xp.isdtype(a.dtype, "real floating") else xp.astype(a, xp.float64)


def _scalar(r: Any) -> Any:
    return r if r.ndim else r[()]


def _check_approximate(approximate: Any) -> None:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


# --- forward rules ------------------------------------------------------------------
def _gelu(x: Any, approximate: str) -> Any:
    numpy_only("gelu", x)
    _check_approximate(approximate)
    a = _np_float(x)
    if approximate == "tanh":
        r = 0.5 * a * (1 + np.tanh(_TANH_C * (a + _TANH_K * a * a * a)))
    else:
        r = 0.5 * a * (1 + _erf(a / _SQRT_2))
    return _scalar(r.astype(a.dtype, copy=False))


def _gelu_grad(x: Any, approximate: str) -> Any:
    """d gelu / dx: Phi(x) + x phi(x) exactly, or the tanh form's own derivative."""
    numpy_only("gelu_grad", x)
    _check_approximate(approximate)
    a = _np_float(x)
    if approximate == "tanh":
        t = np.tanh(_TANH_C * (a + _TANH_K * a * a * a))
        du = _TANH_C * (1 + 3 * _TANH_K * a * a)
        r = 0.5 * (1 + t) + 0.5 * a * (1 - t * t) * du
    else:
        # exp(-x**2 / 2) underflows to 0 far out, never overflows.
        r = 0.5 * (1 + _erf(a / _SQRT_2)) + a * _INV_SQRT_2PI * np.exp(-0.5 * a * a)
    return _scalar(r.astype(a.dtype, copy=False))


def _silu(x: Any) -> Any:
    if _foreign(x):
        xp = namespace_of(x)
        a = _xp_float(xp, x)
        e = xp.exp(-xp.abs(a))
        return a * xp.where(a >= 0, 1 / (1 + e), e / (1 + e))
    a = _np_float(x)
    e = np.exp(-np.abs(a))  # the exponent is <= 0: the sigmoid without overflow
    return _scalar(a * np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False))


def _elu(x: Any, alpha: float) -> Any:
    if _foreign(x):
        xp = namespace_of(x)
        a = _xp_float(xp, x)
        return xp.where(a > 0, a, alpha * xp.expm1(xp.minimum(a, 0)))
    a = _np_float(x)
    # expm1 of min(x, 0): the branch not taken cannot overflow either.
    r = np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0)))
    return _scalar(r.astype(a.dtype, copy=False))


def _leaky_relu(x: Any, negative_slope: float) -> Any:
    if _foreign(x):
        xp = namespace_of(x)
        a = _xp_float(xp, x)
        return xp.where(a > 0, a, negative_slope * a)
    a = _np_float(x)
    return _scalar(np.where(a > 0, a, negative_slope * a).astype(a.dtype, copy=False))


def _log_sigmoid(x: Any) -> Any:
    if _foreign(x):
        xp = namespace_of(x)
        a = _xp_float(xp, x)
        return xp.minimum(a, 0) - xp.log1p(xp.exp(-xp.abs(a)))
    a = _np_float(x)
    return _scalar(np.minimum(a, 0) - np.log1p(np.exp(-np.abs(a))))


def _one_hot(labels: Any, num_classes: int) -> Any:
    n = int(num_classes)
    if n < 1:
        raise ValueError(f"one_hot: num_classes must be a positive int, got {num_classes!r}")
    if _foreign(labels):
        return _xp_one_hot(labels, n)
    y = np.asarray(labels)
    if y.dtype.kind not in "biu":
        raise TypeError(f"one_hot: labels must be integers, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= n):
        raise ValueError(f"one_hot: class indices must be in [0, {n}), got "
                         f"{y.min()}..{y.max()}")
    return (y[..., None] == np.arange(n)).astype(np.float64)


def _xp_one_hot(labels: Any, n: int) -> Any:
    import array_api_compat

    xp = namespace_of(labels)
    if not xp.isdtype(labels.dtype, ("integral", "bool")):
        raise TypeError(f"one_hot: labels must be integers, got dtype {labels.dtype}")
    y = labels if xp.isdtype(labels.dtype, "integral") else xp.astype(labels, xp.int64)
    hot = xp.astype(xp.expand_dims(y, axis=-1) == xp.arange(n, dtype=y.dtype), xp.float64)
    if array_api_compat.is_lazy_array(y):
        # Checking lazy labels would compute them: out-of-range ones give NaN rows.
        valid = xp.expand_dims((y >= 0) & (y < n), axis=-1)
        return xp.where(valid, hot, xp.nan)
    if math.prod(y.shape) and not bool(xp.all((y >= 0) & (y < n))):
        raise ValueError(f"one_hot: class indices must be in [0, {n})")
    return hot


def _norm_axes(shape: tuple[int, ...], normalized_shape: Any) -> tuple[int, ...]:
    """The trailing axes layer_norm normalises: the last for None, else as many as
    ``normalized_shape`` has, which must be the tail of the input's shape (as torch)."""
    if normalized_shape is None:
        return _checked_axes("layer_norm", -1, shape)
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(ns)
    if not 0 < k <= len(shape) or tuple(shape[len(shape) - k:]) != tuple(int(s) for s in ns):
        raise ValueError(f"layer_norm: normalized_shape {ns} is not the tail of the input's "
                         f"shape {shape}")
    return tuple(range(len(shape) - k, len(shape)))


def _layer_norm(x: Any, normalized_shape: Any, eps: float) -> Any:
    if _foreign(x):
        xp = namespace_of(x)
        a = _xp_float(xp, x)
        axes = _norm_axes(tuple(a.shape), normalized_shape)
        d = a - xp.mean(a, axis=axes, keepdims=True)
        return d / xp.sqrt(xp.mean(d * d, axis=axes, keepdims=True) + eps)
    a = _np_float(x)
    axes = _norm_axes(a.shape, normalized_shape)
    d = a - np.mean(a, axis=axes, keepdims=True)
    r = d / np.sqrt(np.mean(d * d, axis=axes, keepdims=True) + eps)
    return r.astype(a.dtype, copy=False)


# --- backward rules -----------------------------------------------------------------
def _gelu_grad_vjp(xp: Any, g: Any, out: Any, x: Any, approximate: str) -> Any:
    if approximate == "tanh":
        t = xp.tanh(_TANH_C * (x + _TANH_K * x * x * x))
        du = _TANH_C * (1 + 3 * _TANH_K * x * x)
        s = 1 - t * t  # d tanh(u) / du
        # d/dx [0.5 (1 + t) + 0.5 x s du], with ds/dx = -2 t s du.
        return g * (s * du + 0.5 * x * (-2 * t * s * du * du + s * 6 * _TANH_C * _TANH_K * x))
    return g * _INV_SQRT_2PI * xp.exp(-0.5 * x * x) * (2 - x * x)


def _silu_vjp(xp: Any, g: Any, out: Any, x: Any) -> Any:
    s = xp.sigmoid(x)
    return g * (s + x * s * (1 - s))


def _elu_vjp(xp: Any, g: Any, out: Any, x: Any, alpha: float) -> Any:
    return xp.where(xp.greater(x, 0), g, g * alpha * xp.exp(xp.minimum(x, 0)))


def _layer_norm_vjp(xp: Any, g: Any, out: Any, x: Any, normalized_shape: Any,
                    eps: float) -> Any:
    # Negative axes: the rule needs no static shape of x.
    k = 1 if normalized_shape is None or isinstance(normalized_shape, int) \
        else len(tuple(normalized_shape))
    axes = tuple(range(-k, 0))
    d = x - xp.mean(x, axis=axes, keepdims=True)
    rstd = 1 / xp.sqrt(xp.mean(d * d, axis=axes, keepdims=True) + eps)
    gm = xp.mean(g, axis=axes, keepdims=True)
    return rstd * (g - gm - out * xp.mean(g * out, axis=axes, keepdims=True))


# --- samples ------------------------------------------------------------------------
def _unary_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((3 * r((2, 3)),)), Sample((r(()),)), Sample((r((4, 1, 2)),))]


def _kinked_samples(rng: _Rng) -> list[Sample]:
    """Inputs at least 0.1 away from the kink at 0."""
    return [Sample((np.sign(s.inputs[0]) * (np.abs(s.inputs[0]) + 0.1),), s.attrs)
            for s in _unary_samples(rng)]


def _gelu_samples(rng: _Rng) -> list[Sample]:
    base = _unary_samples(rng)
    return base + [Sample(s.inputs, {"approximate": "tanh"}) for s in base]


def _elu_samples(rng: _Rng) -> list[Sample]:
    base = _kinked_samples(rng)
    return [*base, Sample(base[0].inputs, {"alpha": 0.5})]


def _leaky_samples(rng: _Rng) -> list[Sample]:
    base = _kinked_samples(rng)
    return [*base, Sample(base[0].inputs, {"negative_slope": 0.2})]


def _one_hot_samples(rng: _Rng) -> list[Sample]:
    return [Sample((np.array([0, 2, 1, 2]),), {"num_classes": 3}),
            Sample((rng.integers(0, 4, (2, 3)),), {"num_classes": 4}),
            Sample((np.array(1),), {"num_classes": 2})]


def _layer_norm_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    x = 2 * r((2, 3, 4))
    return [Sample((x,)), Sample((x,), {"normalized_shape": (3, 4)}),
            Sample((x,), {"normalized_shape": 4, "eps": 1e-3}), Sample((r((5,)),))]


def _unary(name: str, forward: Any, rule: Any, samples: Any, doc: str,
           attributes: dict[str, Any] | None = None, array_api: bool = True) -> OpDef:
    return OpDef(name=name, arity=1, forward=forward, backward=(rule,), input_names=("x",),
                 attributes=attributes or {}, samples=samples, doc=doc, array_api=array_api)


ACTIVATION_OPS: Final[tuple[OpDef, ...]] = (
    _unary("gelu", _gelu,
           lambda xp, g, out, x, approximate: g * xp.gelu_grad(x, approximate=approximate),
           _gelu_samples, "x * Phi(x), elementwise (Phi the standard normal CDF, by erf); "
           "approximate='tanh' uses torch's tanh form. NumPy only: erf is math.erf.",
           {"approximate": "none"}, array_api=False),
    _unary("gelu_grad", _gelu_grad, _gelu_grad_vjp, _gelu_samples,
           "d gelu(x, approximate) / dx, elementwise: the gradient helper of gelu.",
           {"approximate": "none"}, array_api=False),
    _unary("silu", _silu, _silu_vjp, _unary_samples,
           "x * sigmoid(x), elementwise, without overflow."),
    _unary("elu", _elu, _elu_vjp, _elu_samples,
           "x where x > 0, else alpha * (exp(x) - 1), elementwise.", {"alpha": 1.0}),
    _unary("leaky_relu", _leaky_relu,
           lambda xp, g, out, x, negative_slope: xp.where(xp.greater(x, 0), g,
                                                          negative_slope * g),
           _leaky_samples, "x where x > 0, else negative_slope * x, elementwise; the "
           "gradient at 0 is negative_slope.", {"negative_slope": 0.01}),
    _unary("log_sigmoid", _log_sigmoid, lambda xp, g, out, x: g * xp.sigmoid(-x),
           _unary_samples, "log(sigmoid(x)) = -softplus(-x), elementwise, without overflow."),
    OpDef(name="one_hot", arity=1, forward=_one_hot, backward=None,
          attributes={"num_classes": REQUIRED}, input_names=("labels",),
          samples=_one_hot_samples, array_api=True,
          doc="Integer labels as float64 one-hot rows along a new last axis of length "
              "num_classes; not differentiable (no gradient)."),
    OpDef(name="layer_norm", arity=1, forward=_layer_norm, backward=(_layer_norm_vjp,),
          attributes={"normalized_shape": None, "eps": 1e-5}, input_names=("input",),
          samples=_layer_norm_samples, array_api=True,
          doc="(x - mean) / sqrt(var + eps) over the trailing axes normalized_shape names "
              "(torch's: the input's shape tail; None is the last axis), no affine "
              "parameters: multiply and add weights yourself."),
)
