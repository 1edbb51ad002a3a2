"""Gradients of the built-in ops against central finite differences (float64)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import autodag as ad

from .fd import numeric_grads

RNG = np.random.default_rng(0)

SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 4)), ((), (2, 2)), ((4, 1, 3), (2, 1))]

BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "divide": operator.truediv,
    "power": operator.pow,
}


def check(fn: Callable[..., Any], *values: Any, rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """autodag's gradient of sum(fn(*nodes)) equals finite differences of fn on arrays."""
    with ad.Graph():
        nodes = [ad.Variable(np.array(v, dtype=np.float64), name=f"v{i}")
                 for i, v in enumerate(values)]
        out = fn(*nodes)
    got = ad.grad(out, nodes)
    want = numeric_grads(fn, values)
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        assert g.shape == np.shape(values[i])
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"input {i}")


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize(("sa", "sb"), SHAPES)
def test_binary_ops_with_broadcasting(name: str, sa: tuple[int, ...], sb: tuple[int, ...]) -> None:
    a = RNG.standard_normal(sa)
    b = RNG.standard_normal(sb)
    if name == "power":
        a = np.abs(a) + 0.5
    if name == "divide":
        b = np.sign(b) * (np.abs(b) + 0.5)
    check(BINARY[name], a, b)


def test_negate() -> None:
    check(lambda a: -a, RNG.standard_normal((2, 3)))


MATMUL_SHAPES = [
    ((2, 3), (3, 4)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((3,), (3,)),
    ((5, 2, 3), (5, 3, 4)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((3,), (5, 3, 2)),
    ((5, 2, 3), (3,)),
    ((2, 1, 2, 3), (4, 3, 2)),
]


@pytest.mark.parametrize(("sa", "sb"), MATMUL_SHAPES)
def test_matmul_every_shape_combination(sa: tuple[int, ...], sb: tuple[int, ...]) -> None:
    check(operator.matmul, RNG.standard_normal(sa), RNG.standard_normal(sb))


def test_node_used_twice_does_not_alias_gradients() -> None:
    # The tutorial's add handed one dout object to both inputs and += corrupted it.
    with ad.Graph():
        x = ad.Variable(np.array([1.0, 2.0]), name="x")
        y = ad.Variable(np.array([3.0, 4.0]), name="y")
        s = x + y
        z = s * x + s * y + x
    gx, gy = ad.grad(z, [x, y])
    # z = x^2 + 2xy + y^2 + x
    np.testing.assert_allclose(gx, 2 * x.value + 2 * y.value + 1)
    np.testing.assert_allclose(gy, 2 * x.value + 2 * y.value)
    order = ad.topological_sort(z)
    ad.forward_pass(order)
    ad.backward_pass(order)
    np.testing.assert_allclose(x.gradient, gx)
    np.testing.assert_allclose(y.gradient, gy)


def test_returned_gradients_are_independent_arrays() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones(3))
        y = ad.Variable(np.ones(3))
        z = x + y
    gx, gy = ad.grad(z, [x, y])
    gx += 10
    np.testing.assert_array_equal(gy, np.ones(3))


def test_divide_gradient_wrt_denominator() -> None:
    with ad.Graph():
        a = ad.Variable(3.0)
        b = ad.Variable(2.0)
        z = a / b
    ga, gb = ad.grad(z, [a, b])
    assert float(ga) == pytest.approx(0.5)
    assert float(gb) == pytest.approx(-3.0 / 4.0)


def test_power_exponent_gradient_edge_cases() -> None:
    with ad.Graph():
        a = ad.Variable(np.array([0.0, 2.0, 0.0, 3.0]))
        b = ad.Variable(np.array([2.0, 3.0, 0.0, 0.0]))
        z = a**b
    ga, gb = ad.grad(z, [a, b])
    # d/db = log(a) * a**b where a > 0, 0 where a == 0
    np.testing.assert_allclose(gb, [0.0, np.log(2.0) * 8.0, 0.0, np.log(3.0)])
    # d/da = b * a**(b-1), exactly 0 where b == 0 (never 0 * inf = nan)
    np.testing.assert_allclose(ga, [0.0, 12.0, 0.0, 0.0])


def test_power_with_negative_base_keeps_base_gradient_finite() -> None:
    with ad.Graph():
        x = ad.Variable(np.array([-2.0, -1.5]))
        z = x**2 + 2.0**x
    (gx,) = ad.grad(z, [x])
    np.testing.assert_allclose(gx, 2 * x.value + np.log(2.0) * 2.0**x.value)
    assert np.all(np.isfinite(gx))


def test_backward_pass_gives_constants_gradients_without_warnings() -> None:
    with ad.Graph():
        x = ad.Variable(np.array([0.0, -1.0]), name="x")
        z = x**2
    order = ad.topological_sort(z)
    ad.forward_pass(order)
    ad.backward_pass(order)
    np.testing.assert_allclose(x.gradient, [0.0, -2.0])


def test_float32_is_preserved_with_python_scalars() -> None:
    with ad.Graph():
        x = ad.Variable(np.array([1.0, 2.0], dtype=np.float32))
        w = ad.Variable(np.ones((2, 2), dtype=np.float32))
        z = (2.0 * x - 1) / 3 + (w @ x) ** 2
    assert ad.evaluate(z).dtype == np.float32
    gx, gw = ad.grad(z, [x, w])
    assert gx.dtype == np.float32 and gw.dtype == np.float32
    order = ad.topological_sort(z)
    ad.forward_pass(order)
    ad.backward_pass(order)
    assert x.gradient.dtype == np.float32


def test_integer_inputs_get_float_gradients() -> None:
    with ad.Graph():
        x = ad.Variable(np.array([1, 2, 3]))
        n = ad.Variable(2)
        z = x * x + n**-1
    gx, gn = ad.grad(z, [x, n])
    assert gx.dtype == np.float64 and gn.dtype == np.float64
    np.testing.assert_allclose(gx, [2.0, 4.0, 6.0])
    assert float(gn) == pytest.approx(-3 * 0.25)


def test_unrelated_and_self_gradients() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones((2, 3)))
        y = ad.Variable(np.ones(4))
        z = x * 2
    gz, gy, gx = ad.grad(z, [z, y, x])
    np.testing.assert_array_equal(gz, np.ones((2, 3)))
    np.testing.assert_array_equal(gy, np.zeros(4))
    np.testing.assert_array_equal(gx, np.full((2, 3), 2.0))


def test_placeholders_and_feeds() -> None:
    with ad.Graph():
        p = ad.Placeholder(name="p", shape=(None, 2))
        w = ad.Variable(np.array([1.0, -1.0]), name="w")
        z = p * w
    feed = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(ad.evaluate(z, {p: feed}), feed * w.value)
    gp, gw = ad.grad(z, [p, w], {"p": feed})
    np.testing.assert_allclose(gp, np.tile(w.value, (2, 1)))
    np.testing.assert_allclose(gw, feed.sum(axis=0))
