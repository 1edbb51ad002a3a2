"""autodag-math: every op gradient-checked, values against NumPy, operator sugar."""

from __future__ import annotations

import math
from typing import Any, Final

import array_api_strict
import numpy as np
import pytest
from autodag_math.plugin import OPS

import autodag as ad
from autodag.testing import check_op
from tests.fd import numeric_grads


@pytest.mark.parametrize("name", [op.name for op in OPS])
def test_every_op_passes_check_op(name: str) -> None:
    assert ad.get_registry().get(name).plugin.distribution == "autodag-math"
    check_op(name)


@pytest.mark.parametrize(
    ("name", "ref"),
    [("exp", np.exp), ("log", np.log), ("log1p", np.log1p), ("sqrt", np.sqrt),
     ("sin", np.sin), ("cos", np.cos), ("tanh", np.tanh), ("abs", np.abs)],
)
def test_unary_values_match_numpy_for_arrays_and_python_floats(name: str, ref: object) -> None:
    assert callable(ref)
    x = np.array([0.3, 1.7, 2.5])
    with ad.Graph():
        np.testing.assert_allclose(ad.evaluate(getattr(ad.ops, name)(ad.Variable(x))), ref(x))
        y = ad.evaluate(getattr(ad.ops, name)(ad.Variable(0.7)))
    assert type(y) is float and math.isclose(y, float(ref(0.7)), rel_tol=1e-15)


def test_python_floats_outside_the_math_domain_get_numpy_answers() -> None:
    with ad.Graph(), np.errstate(over="ignore", invalid="ignore"):
        big = ad.evaluate(ad.ops.exp(ad.Variable(1000.0)))
        neg = ad.evaluate(ad.ops.sqrt(ad.Variable(-1.0)))
    assert big == np.inf and np.isnan(neg)


def test_broadcasting_gradients_through_the_engine() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal(3)
    lo, hi = -np.abs(rng.standard_normal((2, 1))) - 0.1, 0.4

    def f(a: np.ndarray, b: np.ndarray, lo: np.ndarray) -> Any:
        return np.clip(np.maximum(a, b) * np.sin(a), lo, hi) + np.exp(np.minimum(a, b))

    with ad.Graph():
        va, vb, vlo = ad.Variable(a), ad.Variable(b), ad.Variable(lo)
        z = ad.ops.clip(ad.ops.maximum(va, vb) * ad.ops.sin(va), vlo, hi) \
            + ad.ops.exp(ad.ops.minimum(va, vb))
        np.testing.assert_allclose(ad.evaluate(z), f(a, b, lo))
        got = ad.grad(z, [va, vb, vlo])
    for g, ref in zip(got, numeric_grads(f, [a, b, lo]), strict=True):
        np.testing.assert_allclose(g, ref, rtol=1e-6, atol=1e-8)


def test_abs_and_comparison_sugar() -> None:
    with ad.Graph():
        x = ad.Variable(np.array([-2.0, 0.5, 3.0]))
        y = ad.Variable(np.array([1.0, 0.5, -1.0]))
        np.testing.assert_array_equal(ad.evaluate(abs(x)), [2.0, 0.5, 3.0])
        np.testing.assert_array_equal(ad.evaluate(x < y), [True, False, False])
        np.testing.assert_array_equal(ad.evaluate(x <= y), [True, True, False])
        np.testing.assert_array_equal(ad.evaluate(x > y), [False, False, True])
        np.testing.assert_array_equal(ad.evaluate(x >= y), [False, True, True])
        np.testing.assert_array_equal(ad.evaluate(ad.ops.equal(x, y)), [False, True, False])
        # where(x > y, x, y) is max(x, y): the gradient goes where the value came from.
        z = ad.ops.where(x > y, x * x, 3 * y)
        gx, gy = ad.grad(z, [x, y])
    np.testing.assert_array_equal(gx, [0.0, 0.0, 6.0])
    np.testing.assert_array_equal(gy, [3.0, 3.0, 0.0])


def test_comparisons_and_sign_stop_gradients() -> None:
    with ad.Graph():
        x = ad.Variable(np.array([-1.5, 2.0]))
        z = ad.ops.sign(x) * x + (x < 1.0) * 1.0
        (g,) = ad.grad(z, [x])
    np.testing.assert_array_equal(g, [-1.0, 1.0])  # d(sign(x) x)/dx = sign(x)


def test_maximum_ties_split_the_gradient_evenly() -> None:
    with ad.Graph():
        a, b = ad.Variable(np.array([1.0, 2.0])), ad.Variable(np.array([1.0, 0.0]))
        ga, gb = ad.grad(ad.ops.maximum(a, b), [a, b])
    np.testing.assert_array_equal(ga, [0.5, 1.0])
    np.testing.assert_array_equal(gb, [0.5, 0.0])


def test_clip_bounds_in_either_order_follow_numpy() -> None:
    a = np.array([-2.0, 0.1, 2.0])
    with ad.Graph():
        va, lo, hi = ad.Variable(a), ad.Variable(0.5), ad.Variable(-0.5)
        z = ad.ops.clip(va, lo, hi)
        np.testing.assert_array_equal(ad.evaluate(z), np.clip(a, 0.5, -0.5))
        ga, glo, ghi = ad.grad(z, [va, lo, hi])
    np.testing.assert_array_equal(ga, [0.0, 0.0, 0.0])
    assert float(glo) == 0.0 and float(ghi) == 3.0


def test_tanh_gradient_is_g_times_one_minus_out_squared_in_every_dtype() -> None:
    rng = np.random.default_rng(3)
    vjps = ad.get_registry().get("tanh").opdef.vjps
    assert vjps is not None
    rule: Any = vjps[0]
    xp = ad.get_registry().numeric
    out32 = np.tanh(rng.standard_normal((4, 5))).astype(np.float32)
    cases: list[tuple[Any, Any]] = [
        (rng.standard_normal((4, 5)).astype(np.float32), out32),  # one new array
        (rng.standard_normal((4, 5)), out32),  # float64 g: a float64 result
        (rng.standard_normal((4, 5)), np.tanh(rng.standard_normal((1, 5)))),
        (0.5, 0.25),
    ]
    for g, out in cases:
        got = rule(xp, g, out, None)
        ref = np.asarray(g, dtype=np.float64) * (1 - np.asarray(out, dtype=np.float64) ** 2)
        dtype = np.result_type(g, out)
        assert np.result_type(got) == dtype
        single = np.float32 in (np.result_type(g), np.result_type(out))
        np.testing.assert_allclose(got, ref, rtol=1e-5 if single else 1e-12)
        assert got is not g and got is not out


# --- other array libraries: NumPy's answers in their own arrays ----------------------------
def _strict(*values: Any) -> list[Any]:
    return [array_api_strict.asarray(v) if isinstance(v, np.ndarray) else v for v in values]


_A: Final = np.random.default_rng(9).standard_normal((2, 3))


@pytest.mark.parametrize(
    ("name", "args"),
    [("where", (_A > 0, 1.0, 0)),  # two Python numbers beside the condition: a float
     ("where", (True, _A, 0)),  # a Python bool condition
     ("where", ((_A > 0).astype(np.int64), _A, -1.0)),  # a numeric condition, as truth
     ("clip", (_A, 0.6, -0.4)),  # a_min > a_max: every element is a_max, as numpy.clip
     ("clip", (1.0, _A, 0.5)),
     ("maximum", (0.25, _A)), ("sign", (_A,)), ("abs", (np.array([-2, 3]),)),
     ("exp", (np.array([0, 1, 2]),)),  # integers computed in float64, as NumPy
     ("less_equal", (0.0, _A))],
)
def test_forwards_on_array_api_strict_give_numpys_answers(name: str, args: tuple[Any, ...]
                                                          ) -> None:
    forward = ad.get_registry().get(name).opdef.forward
    want = forward(*args)
    got = forward(*_strict(*args))
    # Never NumPy's arrays: numpy.sign and the like would silently convert strict arrays.
    assert isinstance(got, type(array_api_strict.asarray(0)))
    np.testing.assert_array_equal(np.asarray(got), want)
    assert np.asarray(got).dtype == np.asarray(want).dtype


@pytest.mark.parametrize("name", [op.name for op in OPS])
def test_every_op_declares_it_runs_on_any_backend(name: str) -> None:
    assert ad.get_registry().get(name).opdef.array_api
