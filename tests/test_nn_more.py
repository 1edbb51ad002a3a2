"""autodag-nn's further ops: activations, one_hot, layer_norm, convolutions and pooling,
against plain NumPy (loops for convolution and pooling) and central differences."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_strict
import numpy as np
import pytest

import autodag as ad
from tests.fd import numeric_grads

RNG_SEED = 1234


def _rng() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


def _value_and_grads(f: Callable[..., Any], *args: np.ndarray[Any, Any]) -> tuple[Any, list[Any]]:
    """f's value and d sum(f) / d args through autodag."""
    with ad.Graph():
        xs = [ad.Variable(a) for a in args]
        z = f(*xs)
        value = ad.evaluate(z)
        grads = ad.grad(ad.ops.sum(z), xs)
    return value, list(grads)


def _check_grads(f: Callable[..., Any], *args: np.ndarray[Any, Any]) -> None:
    _, got = _value_and_grads(f, *args)
    want = numeric_grads(lambda *a: ad.evaluate(f(*a)), args)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)


# --- activations ----------------------------------------------------------------------
def _erf(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    r: np.ndarray[Any, Any] = np.array([math.erf(v) for v in x.ravel()]).reshape(x.shape)
    return r


def _tanh_gelu(x: Any) -> Any:
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def _np_sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-x))


ACTIVATIONS: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any]]] = [
    ("gelu", ad.ops.gelu, lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    ("gelu-tanh", lambda x: ad.ops.gelu(x, approximate="tanh"), _tanh_gelu),
    ("silu", ad.ops.silu, lambda x: x * _np_sigmoid(x)),
    ("elu", ad.ops.elu, lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    ("elu-alpha", lambda x: ad.ops.elu(x, alpha=0.3), lambda x: np.where(x > 0, x,
                                                                         0.3 * (np.exp(x) - 1))),
    ("leaky_relu", ad.ops.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x)),
    ("leaky_relu-0.2", lambda x: ad.ops.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    ("log_sigmoid", ad.ops.log_sigmoid, lambda x: np.log(_np_sigmoid(x))),
]
_IDS = [a[0] for a in ACTIVATIONS]


def _away_from_zero(shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    x = 2 * _rng().standard_normal(shape)
    return np.sign(x) * (np.abs(x) + 0.1)


@pytest.mark.parametrize(("label", "op", "ref"), ACTIVATIONS, ids=_IDS)
def test_activation_values_and_gradients(label: str, op: Callable[[Any], Any],
                                         ref: Callable[[Any], Any]) -> None:
    x = _away_from_zero((3, 4))
    value, _ = _value_and_grads(op, x)
    np.testing.assert_allclose(value, ref(x), rtol=1e-12, atol=1e-14)
    _check_grads(op, x)


@pytest.mark.parametrize(("label", "op", "ref"), ACTIVATIONS, ids=_IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_activations_stable_at_extremes(label: str, op: Callable[[Any], Any],
                                        ref: Callable[[Any], Any], dtype: type) -> None:
    x: np.ndarray[Any, Any] = np.array([[-1000.0, -30.0, 1.0], [1000.0, 999.0, -999.0]],
                                       dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, (g,) = _value_and_grads(op, x)
    assert value.dtype == dtype
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(g))


def test_gelu_second_derivative_matches_differences() -> None:
    x = _away_from_zero((5,))
    for approximate in ("none", "tanh"):
        def d1(a: Any, approximate: str = approximate) -> Any:
            return ad.ops.gelu_grad(a, approximate=approximate)
        _check_grads(d1, x)


# --- one_hot and layer_norm -------------------------------------------------------------
def test_one_hot_values_and_range() -> None:
    labels = np.array([[0, 2], [1, 0]])
    got = ad.evaluate(ad.ops.one_hot(labels, 3))
    assert got.dtype == np.float64 and got.shape == (2, 2, 3)
    np.testing.assert_array_equal(got, np.eye(3)[labels])
    with pytest.raises(ValueError, match="class indices"):
        ad.evaluate(ad.ops.one_hot(np.array([3]), 3))
    strict = ad.evaluate(ad.ops.one_hot(array_api_strict.asarray([2, 0]), num_classes=3))
    np.testing.assert_array_equal(np.asarray(strict), np.eye(3)[[2, 0]])


@pytest.mark.parametrize("normalized_shape", [None, 4, (3, 4)])
def test_layer_norm_values_and_gradients(normalized_shape: Any) -> None:
    x = 3 * _rng().standard_normal((2, 3, 4)) + 1
    axes = (-1,) if normalized_shape in (None, 4) else (-2, -1)
    mu = x.mean(axis=axes, keepdims=True)
    want = (x - mu) / np.sqrt(((x - mu) ** 2).mean(axis=axes, keepdims=True) + 1e-5)

    def f(a: Any) -> Any:
        # A weighted sum, so that the gradient is not zero by symmetry.
        return ad.ops.layer_norm(a, normalized_shape) * np.arange(24.0).reshape(2, 3, 4)

    value = ad.evaluate(ad.ops.layer_norm(x, normalized_shape))
    np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-12)
    _check_grads(f, x)


def test_layer_norm_refuses_a_shape_that_is_not_the_tail() -> None:
    with pytest.raises(ValueError, match="not the tail"):
        ad.evaluate(ad.ops.layer_norm(np.ones((2, 3)), (2,)))


# --- convolution ----------------------------------------------------------------------
def _conv_loops(x: Any, w: Any, stride: int, padding: int, dilation: int, groups: int) -> Any:
    """The convolution by its definition, one output element at a time."""
    nd = x.ndim - 2
    xp = np.pad(x, [(0, 0), (0, 0)] + [(padding, padding)] * nd)
    n = x.shape[0]
    o, cg = w.shape[:2]
    ks = w.shape[2:]
    size = [(s - dilation * (k - 1) - 1) // stride + 1 for s, k in zip(xp.shape[2:], ks)]
    out = np.zeros((n, o, *size))
    og = o // groups
    for idx in np.ndindex(*out.shape):
        b, oc, *pos = idx
        g = oc // og
        total = 0.0
        for ci in range(cg):
            for kk in np.ndindex(*ks):
                at = tuple(p * stride + k * dilation for p, k in zip(pos, kk))
                xi, wi = (b, g * cg + ci, *at), (oc, ci, *kk)
                total += xp[xi] * w[wi]
        out[idx] = total
    return out


CONV_CASES = [
    (1, {}), (1, {"stride": 2, "padding": 1}), (1, {"dilation": 2}), (1, {"groups": 2}),
    (2, {}), (2, {"stride": 2, "padding": 1}), (2, {"dilation": 2, "padding": 1}),
    (2, {"groups": 2, "stride": 2}),
]


@pytest.mark.parametrize(("nd", "attrs"), CONV_CASES)
def test_conv_values_and_gradients(nd: int, attrs: dict[str, Any]) -> None:
    rng = _rng()
    groups = attrs.get("groups", 1)
    x = rng.standard_normal((2, 2 * groups) + (5,) * nd)
    w = rng.standard_normal((2 * groups, 2) + (3,) * nd)
    op = ad.ops.conv1d if nd == 1 else ad.ops.conv2d
    full = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, **attrs}
    value = ad.evaluate(op(x, w, **attrs))
    np.testing.assert_allclose(value, _conv_loops(x, w, **full), rtol=1e-12, atol=1e-12)
    weights = rng.standard_normal(value.shape)
    _check_grads(lambda a, b: op(a, b, **attrs) * weights, x, w)


def test_conv2d_second_order_matches_differences() -> None:
    rng = _rng()
    x, w = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((2, 2, 2, 2))
    v = rng.standard_normal(x.shape)

    def grad_dot_v(a: Any, b: Any) -> Any:
        # d/dx and d/dw of <d sum(conv(x, w)**2) / dx, v>, through the helper ops.
        (gx,) = ad.gradients(ad.ops.sum(ad.ops.conv2d(a, b, padding=1) ** 2), [a])
        return ad.ops.sum(gx * v)

    with ad.Graph():
        xs = [ad.Variable(x), ad.Variable(w)]
        got = [ad.evaluate(g) for g in ad.gradients(grad_dot_v(*xs), xs)]

    def numeric(a: Any, b: Any) -> Any:
        with ad.Graph():
            va = ad.Variable(a)
            return ad.evaluate(grad_dot_v(va, ad.Constant(b)))

    want = numeric_grads(numeric, [x, w], eps=1e-5)
    for g, wnt in zip(got, want, strict=True):
        np.testing.assert_allclose(g, wnt, rtol=1e-5, atol=1e-6)


def test_conv_errors_name_the_problem() -> None:
    x, w = np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))
    with pytest.raises(ValueError, match="bias is no argument"):
        ad.evaluate(ad.ops.get("conv2d")(x, w, np.ones(3)))  # torch's bias position
    with pytest.raises(ValueError, match="groups"):
        ad.evaluate(ad.ops.conv2d(x, w, groups=2))
    with pytest.raises(ValueError, match="does not fit"):
        ad.evaluate(ad.ops.conv2d(x, np.ones((3, 2, 6, 6))))


@pytest.mark.parametrize("name", ["conv1d", "conv2d"])
def test_conv_on_foreign_arrays_matches_numpy(name: str) -> None:
    rng = _rng()
    nd = 1 if name == "conv1d" else 2
    x, w = rng.standard_normal((2, 4) + (5,) * nd), rng.standard_normal((2, 2) + (2,) * nd)
    attrs = {"stride": 2, "padding": 1, "groups": 2}
    op = ad.ops.get(name)
    want = ad.evaluate(op(x, w, **attrs))
    with ad.Graph():
        xv = ad.Variable(array_api_strict.asarray(x))
        got = ad.evaluate(op(xv, array_api_strict.asarray(w), **attrs))
        (gx,) = ad.grad(ad.ops.sum(op(xv, array_api_strict.asarray(w), **attrs)), [xv])
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
    _, (gx_np,) = _value_and_grads(lambda a: op(a, w, **attrs), x)
    np.testing.assert_allclose(np.asarray(gx), gx_np, rtol=1e-12)


def test_gelu_refuses_foreign_arrays() -> None:
    with pytest.raises(ad.BackendError, match="gelu"):
        ad.evaluate(ad.ops.gelu(array_api_strict.asarray(np.ones(3))))


# --- pooling --------------------------------------------------------------------------
def _pool_loops(x: Any, kind: str, k: int, stride: int, padding: int) -> Any:
    nd = x.ndim - 2
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, [(0, 0), (0, 0)] + [(padding, padding)] * nd, constant_values=fill)
    size = [(s - k) // stride + 1 for s in xp.shape[2:]]
    out = np.zeros(x.shape[:2] + tuple(size))
    for idx in np.ndindex(*out.shape):
        b, c, *pos = idx
        at = (b, c, *(slice(p * stride, p * stride + k) for p in pos))
        window = xp[at]
        out[idx] = window.max() if kind == "max" else window.mean()
    return out


POOL_CASES = [
    (nd, kind, attrs) for nd in (1, 2) for kind in ("max", "avg")
    for attrs in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 1},
                  {"kernel_size": 3, "stride": 2, "padding": 1})
]


@pytest.mark.parametrize(("nd", "kind", "attrs"), POOL_CASES)
def test_pool_values_and_gradients(nd: int, kind: str, attrs: dict[str, Any]) -> None:
    shape = (2, 2) + (5,) * nd
    # Distinct values: no window has a tie for its maximum.
    x = _rng().permutation(math.prod(shape)).reshape(shape) / 4.0
    op = ad.ops.get(f"{kind}_pool{nd}d")
    value = ad.evaluate(op(x, **attrs))
    want = _pool_loops(x, kind, attrs["kernel_size"], attrs.get("stride", attrs["kernel_size"]),
                       attrs.get("padding", 0))
    np.testing.assert_allclose(value, want, rtol=1e-12)
    weights = _rng().standard_normal(value.shape)
    _check_grads(lambda a: op(a, **attrs) * weights, x)


def test_pool_refuses_too_much_padding() -> None:
    with pytest.raises(ValueError, match="at most half"):
        ad.evaluate(ad.ops.get("max_pool2d")(np.ones((1, 1, 4, 4)), 2, padding=2))
