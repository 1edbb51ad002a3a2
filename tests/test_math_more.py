"""autodag-math's further elementwise ops: values against NumPy (on NumPy, Python floats and
array-api-strict), gradients against central differences, stability and edge cases."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import array_api_strict
import numpy as np
import pytest

import autodag as ad
from tests.fd import numeric_grads

_RNG: Final = np.random.default_rng(1234)
_X: Final = _RNG.standard_normal((2, 3))
_INSIDE: Final = 0.9 * np.tanh(_X)  # in (-0.9, 0.9)
_POSITIVE: Final = np.abs(_X) + 0.5
_NONZERO: Final = np.sign(_X) * (np.abs(_X) + 0.5)

#: name, NumPy's function, an input inside its domain
UNARY: Final = [
    ("square", np.square, _X), ("log2", np.log2, _POSITIVE), ("log10", np.log10, _POSITIVE),
    ("expm1", np.expm1, _X), ("exp2", np.exp2, _X), ("tan", np.tan, _INSIDE),
    ("arcsin", np.arcsin, _INSIDE), ("arccos", np.arccos, _INSIDE), ("arctan", np.arctan, _X),
    ("sinh", np.sinh, _X), ("cosh", np.cosh, _X), ("arcsinh", np.arcsinh, _X),
    ("arccosh", np.arccosh, _POSITIVE + 1), ("arctanh", np.arctanh, _INSIDE),
    ("sinc", np.sinc, _NONZERO), ("reciprocal", np.reciprocal, _NONZERO),
]

_B: Final = _RNG.standard_normal((3,))
_B_NONZERO: Final = np.sign(_B) * (np.abs(_B) + 0.5)
#: name, NumPy's function, two inputs that broadcast (away from kinks and jumps)
BINARY: Final = [
    ("arctan2", np.arctan2, _NONZERO, _B), ("hypot", np.hypot, _X, _B),
    ("logaddexp", np.logaddexp, _X, _B), ("logaddexp2", np.logaddexp2, _X, _B),
    ("fmax", np.fmax, _X, _B), ("fmin", np.fmin, _X, _B),
    ("mod", np.mod, (np.arange(6).reshape(2, 3) - 2.6) * _B_NONZERO, _B_NONZERO),
    ("remainder", np.remainder, (np.arange(6).reshape(2, 3) - 2.3) * _B_NONZERO, _B_NONZERO),
]


def _op(name: str) -> Callable[..., Any]:
    fn: Callable[..., Any] = getattr(ad.ops, name)
    return fn


def _grads(name: str, args: list[Any], **attrs: Any) -> list[Any]:
    with ad.Graph():
        xs = [ad.Variable(a) for a in args]
        out = _op(name)(*xs, **attrs)
        return list(ad.grad(ad.ops.sum(out), xs))


def _strict(*values: Any) -> list[Any]:
    return [array_api_strict.asarray(v) if isinstance(v, np.ndarray) else v for v in values]


@pytest.mark.parametrize(("name", "ref", "x"), UNARY, ids=[u[0] for u in UNARY])
def test_unary_values_and_gradients(name: str, ref: Callable[[Any], Any], x: Any) -> None:
    with ad.Graph():
        np.testing.assert_allclose(ad.evaluate(_op(name)(ad.Variable(x))), ref(x), rtol=1e-14)
        y = ad.evaluate(_op(name)(ad.Variable(float(x[0, 1]))))
    assert type(y) is float and math.isclose(y, float(ref(x[0, 1])), rel_tol=1e-14)
    (got,) = _grads(name, [x])
    (want,) = numeric_grads(ref, [x])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("name", "ref", "a", "b"), BINARY, ids=[b[0] for b in BINARY])
def test_binary_values_and_gradients_broadcast(name: str, ref: Callable[[Any, Any], Any],
                                               a: Any, b: Any) -> None:
    with ad.Graph():
        got = ad.evaluate(_op(name)(ad.Variable(a), ad.Variable(b)))
    np.testing.assert_allclose(got, ref(a, b), rtol=1e-14, atol=1e-15)
    for g, want in zip(_grads(name, [a, b]), numeric_grads(ref, [a, b]), strict=True):
        assert g.shape == want.shape
        np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-8)


_ARGS: Final = {u[0]: [u[2]] for u in UNARY} | {b[0]: [b[2], b[3]] for b in BINARY}


@pytest.mark.parametrize("name", list(_ARGS))
def test_forwards_on_array_api_strict_give_numpys_answers(name: str) -> None:
    args = _ARGS[name]
    forward = ad.get_registry().get(name).opdef.forward
    got = forward(*_strict(*args))
    assert isinstance(got, type(array_api_strict.asarray(0)))
    np.testing.assert_allclose(np.asarray(got), forward(*args), rtol=1e-13)


def test_mod_and_remainder_are_two_ops_with_pythons_sign_convention() -> None:
    a, b = np.array([5.5, -5.5, 5.5, -5.5]), np.array([2.0, 2.0, -2.0, -2.0])
    reg = ad.get_registry()
    assert reg.get("mod").opdef is not reg.get("remainder").opdef
    with ad.Graph():
        for name in ("mod", "remainder"):
            np.testing.assert_array_equal(
                ad.evaluate(_op(name)(ad.Variable(a), ad.Variable(b))), np.mod(a, b))
    np.testing.assert_array_equal(np.mod(a, b), [x % y for x, y in zip(a, b, strict=True)])
    ga, gb = _grads("mod", [a, b])
    np.testing.assert_array_equal(ga, np.ones(4))
    np.testing.assert_array_equal(gb, -np.floor(a / b))


@pytest.mark.parametrize(("name", "ref", "shift"),
                         [("logaddexp", np.logaddexp, math.log(2.0)),
                          ("logaddexp2", np.logaddexp2, 1.0)])
def test_logaddexp_is_stable_at_plus_minus_1000(name: str, ref: Callable[[Any, Any], Any],
                                                 shift: float) -> None:
    a = np.array([1000.0, -1000.0, 1000.0, -1000.0])
    b = np.array([1000.0, -1000.0, 999.0, -1001.0])
    for backend in (lambda v: v, array_api_strict.asarray):
        with ad.Graph():
            xa, xb = ad.Variable(backend(a)), ad.Variable(backend(b))
            out = _op(name)(xa, xb)
            got = np.asarray(ad.evaluate(out))
            ga, gb = (np.asarray(g) for g in ad.grad(ad.ops.sum(out), [xa, xb]))
        np.testing.assert_allclose(got, ref(a, b), rtol=1e-15)
        np.testing.assert_allclose(got[:2], a[:2] + shift, rtol=1e-15)
        # d/da = base ** (a - out): a half at ties, and the two gradients sum to one.
        np.testing.assert_allclose(ga[:2], [0.5, 0.5], rtol=1e-12)
        np.testing.assert_allclose(ga + gb, np.ones(4), rtol=1e-12)
        assert np.all(ga[2:] > gb[2:])


def test_fmax_fmin_ignore_nans_in_value_and_gradient() -> None:
    a, b = np.array([np.nan, 1.0, 2.0, 3.0]), np.array([1.0, np.nan, 5.0, 3.0])
    for name, ref in (("fmax", np.fmax), ("fmin", np.fmin)):
        with ad.Graph():
            np.testing.assert_array_equal(ad.evaluate(_op(name)(ad.Variable(a), b)), ref(a, b))
            got = _op(name)(*_strict(a, b))
            np.testing.assert_array_equal(np.asarray(ad.evaluate(got)), ref(a, b))
        ga, gb = _grads(name, [a, b])
        np.testing.assert_array_equal(ga + gb, np.ones(4))
        np.testing.assert_array_equal(ga[:2], [0.0, 1.0])
        np.testing.assert_array_equal(ga[3], 0.5)  # ties split evenly
    ga, gb = _grads("fmax", [a, b])
    np.testing.assert_array_equal(ga[2], 0.0)


def test_sinc_at_zero_is_one_with_zero_gradient() -> None:
    x = np.array([0.0, 0.5, -1.5])
    for backend in (lambda v: v, array_api_strict.asarray):
        with ad.Graph():
            v = ad.Variable(backend(x))
            out = ad.ops.sinc(v)
            np.testing.assert_allclose(np.asarray(ad.evaluate(out)), np.sinc(x), rtol=1e-15)
            (g,) = ad.grad(ad.ops.sum(out), [v])
            (h,) = ad.grad(ad.ops.sum(ad.gradients(ad.ops.sum(out), [v])[0]), [v])
        g, h = np.asarray(g), np.asarray(h)
        assert g[0] == 0.0 and np.all(np.isfinite(h))
        np.testing.assert_allclose(g[1:], numeric_grads(np.sinc, [x])[0][1:], rtol=1e-6)


def test_nan_to_num_values_and_gradient() -> None:
    x = np.array([np.nan, np.inf, -np.inf, 1.5, -2.0])
    big = np.finfo(np.float64).max
    with ad.Graph():
        v = ad.Variable(x)
        np.testing.assert_array_equal(ad.evaluate(_op("nan_to_num")(v)), [0, big, -big, 1.5, -2])
        custom = _op("nan_to_num")(v, 7.0, posinf=3.0, neginf=-3.0)
        np.testing.assert_array_equal(ad.evaluate(custom), [7, 3, -3, 1.5, -2])
        (g,) = ad.grad(ad.ops.sum(custom), [v])
        strict = _op("nan_to_num")(_strict(x)[0], neginf=-1.0)
        np.testing.assert_array_equal(np.asarray(ad.evaluate(strict)),
                                      np.nan_to_num(x, neginf=-1.0))
        assert ad.evaluate(_op("nan_to_num")(ad.Variable(math.inf))) == big
        z = np.array([complex(np.nan, np.inf), complex(1, -np.inf), 2 + 3j])
        got = np.asarray(ad.evaluate(_op("nan_to_num")(_strict(z)[0], 1.0, 5.0)))
        np.testing.assert_array_equal(got, np.nan_to_num(z, nan=1.0, posinf=5.0))
    np.testing.assert_array_equal(g, [0, 0, 0, 1, 1])


def test_round_follows_numpy_for_every_decimals() -> None:
    x = np.array([2.5, 3.5, -0.5, 1.2345, -1.2355, 1234.5, 0.125])
    for d in (0, 1, 2, -1, -2):
        want = np.round(x, d)
        with ad.Graph():
            np.testing.assert_array_equal(ad.evaluate(_op("round")(ad.Variable(x), d)), want)
            got = ad.evaluate(_op("round")(_strict(x)[0], decimals=d))
        np.testing.assert_array_equal(np.asarray(got), want)
    ints = np.array([1234, -1255, 7])
    for d in (1, -1, -2):
        got = ad.get_registry().get("round").opdef.forward(_strict(ints)[0], d)
        np.testing.assert_array_equal(np.asarray(got), np.round(ints, d))
        assert np.asarray(got).dtype == np.round(ints, d).dtype
    with ad.Graph():
        y = ad.evaluate(_op("round")(ad.Variable(2.5)))
    assert type(y) is float and y == 2.0


@pytest.mark.parametrize(("name", "ref"), [("floor", np.floor), ("ceil", np.ceil),
                                           ("trunc", np.trunc), ("round", np.round),
                                           ("isnan", np.isnan), ("isfinite", np.isfinite),
                                           ("isinf", np.isinf)])
def test_rounding_and_classification_stop_gradients(name: str, ref: Any) -> None:
    x = np.array([-1.7, -0.2, 0.4, 2.6, np.nan, np.inf])
    reg = ad.get_registry().get(name).opdef
    assert reg.backward is None and not reg.differentiable
    with ad.Graph():
        v = ad.Variable(x)
        np.testing.assert_array_equal(ad.evaluate(_op(name)(v)), ref(x))
        np.testing.assert_array_equal(np.asarray(ad.evaluate(_op(name)(_strict(x)[0]))), ref(x))
        with np.errstate(invalid="ignore"):
            (g,) = ad.grad(ad.ops.sum(_op(name)(v) * 1.0 + v), [v])
    np.testing.assert_array_equal(g, np.ones(6))  # only the "+ v" term
