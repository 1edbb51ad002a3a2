"""Symbolic gradients: nodes of the graph, evaluated repeatedly and differentiated again."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autodag as ad
import autodag.viz
from autodag import registry
from autodag.symbolic import GraphNamespace

from .fd import numeric_grads

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_third_derivative_of_x4_at_2_is_48() -> None:
    with ad.Graph():
        x = ad.Variable(2.0, name="x")
        y = x**4
    (d1,) = ad.gradients(y, [x])
    (d2,) = ad.gradients(d1, [x])
    (d3,) = ad.gradients(d2, [x])
    (d4,) = ad.gradients(d3, [x])
    assert [float(v) for v in ad.evaluate([d1, d2, d3, d4])] == [32.0, 48.0, 48.0, 24.0]


def test_gradient_nodes_are_evaluated_again_with_new_feeds() -> None:
    with ad.Graph() as graph:
        x = ad.Placeholder(name="x", shape=(3,))
        w = ad.Variable(np.array([1.0, -2.0, 0.5]), name="w")
        y = (x * w) @ (x * w)
    gx, gw = ad.gradients(y, [x, w])
    assert gx.graph is graph and gw.graph is graph
    for seed in range(3):
        xv = np.random.default_rng(seed).standard_normal(3)
        got_x, got_w = ad.evaluate([gx, gw], feed_dict={x: xv})
        np.testing.assert_allclose(got_x, 2 * xv * w.value**2)
        np.testing.assert_allclose(got_w, 2 * w.value * xv**2)


def rosenbrock() -> tuple[ad.Variable, ad.Node]:
    with ad.Graph():
        p = ad.Variable(np.array([-1.2, 1.0]), name="p")
        x = p @ np.array([1.0, 0.0])
        y = p @ np.array([0.0, 1.0])
        f = (1 - x) ** 2 + 100 * (y - x**2) ** 2
    return p, f


@pytest.mark.parametrize("point", [(-1.2, 1.0), (1.0, 1.0), (0.3, -2.0)])
def test_rosenbrock_hessian_is_the_analytic_one(point: tuple[float, float]) -> None:
    p, f = rosenbrock()
    h = ad.hessian(f, p)
    p.value = np.array(point)
    x, y = point
    want = np.array([[2 - 400 * (y - x * x) + 800 * x * x, -400 * x], [-400 * x, 200.0]])
    np.testing.assert_allclose(ad.evaluate(h), want, rtol=1e-12)
    (g,) = ad.gradients(f, [p])
    np.testing.assert_allclose(
        ad.evaluate(g), [-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)], rtol=1e-12
    )


def test_newton_example_converges_in_few_steps() -> None:
    spec = importlib.util.spec_from_file_location("newton_rosenbrock",
                                                  EXAMPLES / "newton_rosenbrock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = module.newton()
    assert len(path) <= 10
    np.testing.assert_allclose(path[-1], [1.0, 1.0], atol=1e-12)


def test_hessian_and_jacobian_shapes_and_values() -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 3))
    with ad.Graph():
        x = ad.Variable(rng.standard_normal((2, 3)), name="x")
        z = x * x * x * ad.Constant(a)  # elementwise: diagonal Jacobian 3 a x^2
        y = z @ np.ones(3) @ np.ones(2)
    jac = ad.evaluate(ad.jacobian(z, x))
    assert jac.shape == (2, 3, 2, 3)
    want = np.zeros((2, 3, 2, 3))
    for i, j in np.ndindex(2, 3):
        want[i, j, i, j] = 3 * a[i, j] * x.value[i, j] ** 2
    np.testing.assert_allclose(jac, want, rtol=1e-12)
    hes = ad.evaluate(ad.hessian(y, x))
    want_h = np.zeros((2, 3, 2, 3))
    for i, j in np.ndindex(2, 3):
        want_h[i, j, i, j] = 6 * a[i, j] * x.value[i, j]
    np.testing.assert_allclose(hes, want_h, rtol=1e-12)


def test_scalar_hessian_and_unrelated_inputs_get_zeros() -> None:
    with ad.Graph():
        x = ad.Variable(1.5, name="x")
        u = ad.Variable(np.ones((2, 2)), name="u")
        y = x**3
    assert float(ad.evaluate(ad.hessian(y, x))) == pytest.approx(9.0)
    _, gu = ad.gradients(y, [x, u])
    np.testing.assert_array_equal(ad.evaluate(gu), np.zeros((2, 2)))
    (hu,) = ad.hessian_vector_product(y, [u], [np.ones((2, 2))])
    np.testing.assert_array_equal(ad.evaluate(hu), np.zeros((2, 2)))


def test_gradient_graph_can_be_pictured() -> None:
    with ad.Graph():
        x = ad.Variable(3.0, name="x")
        y = x * x
    (g,) = ad.gradients(y, [x])
    dot = autodag.viz.to_dot(g)
    assert dot.startswith("digraph") and '"x\\nVariable' in dot and "multiply" in dot


def mlp() -> tuple[list[ad.Variable], ad.Node]:
    """A 24-24-16 network with a smooth activation: 1,000 parameters, a squared loss."""
    rng = np.random.default_rng(0)
    sizes = [(24, 24), (24,), (24, 16), (16,)]
    with ad.Graph():
        params = [ad.Variable(rng.standard_normal(s) / 4, name=f"p{i}")
                  for i, s in enumerate(sizes)]
        w1, b1, w2, b2 = params
        data = ad.Constant(rng.standard_normal((32, 24)), name="data")
        target = ad.Constant(rng.standard_normal((32, 16)), name="target")
        z = data @ w1 + b1
        hidden = z * (1 + z * z) ** -0.5
        r = hidden @ w2 + b2 - target
        loss = (r * r) @ np.ones(16) @ np.ones(32) / 32
    assert sum(p.value.size for p in params) == 1000
    return params, loss


def test_hvp_on_1000_parameter_mlp_matches_finite_differences_of_gradients() -> None:
    params, loss = mlp()
    rng = np.random.default_rng(1)
    vs = [rng.standard_normal(p.value.shape) for p in params]
    hv = ad.evaluate(ad.hessian_vector_product(loss, params, vs))
    base = [p.value for p in params]
    eps = 1e-5

    def grads_at(sign: float) -> list[Any]:
        feed = {p: b + sign * eps * v for p, b, v in zip(params, base, vs, strict=True)}
        return ad.grad(loss, params, feed_dict=feed)

    fd = [(hi - lo) / (2 * eps) for hi, lo in zip(grads_at(1), grads_at(-1), strict=True)]
    got, want = np.concatenate([h.ravel() for h in hv]), np.concatenate([f.ravel() for f in fd])
    assert np.linalg.norm(got - want) <= 1e-6 * np.linalg.norm(want)


def test_hessian_matches_finite_differences_on_a_small_function() -> None:
    rng = np.random.default_rng(5)
    m = rng.standard_normal((3, 3))
    with ad.Graph():
        x = ad.Variable(rng.standard_normal(3), name="x")
        y = (m @ x) ** 2 @ (1 / (1 + x * x))
    hes = ad.evaluate(ad.hessian(y, x))

    def grad_f(xv: Any) -> Any:
        return ad.grad(y, [x], feed_dict={x: xv})[0]

    want = np.stack([numeric_grads(lambda v, i=i: grad_f(v)[i], [x.value])[0] for i in range(3)])
    np.testing.assert_allclose(hes, want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(hes, hes.T, rtol=1e-12)


# --- errors -------------------------------------------------------------------------
@pytest.fixture
def numpy_only_plugin() -> Iterator[str]:
    class Plugin:
        @ad.hookimpl
        def autodag_register_ops(self) -> list[ad.OpDef]:
            return [
                ad.OpDef(name="np_sin", arity=1, forward=np.sin,
                         backward=(lambda xp, g, out, a: g * np.cos(a),), symbolic=False),
                ad.OpDef(name="odd_rule", arity=1, forward=lambda a: a * a,
                         backward=(lambda xp, g, out, a: xp.no_such_op(g, a),)),
            ]

    name = ad.register_plugin(Plugin(), name="second-order-test")
    try:
        yield name
    finally:
        ad.unregister_plugin(name)


def test_numpy_only_rule_works_first_order_but_not_symbolically(numpy_only_plugin: str) -> None:
    with ad.Graph():
        x = ad.Variable(0.3, name="x")
        y = ad.ops.get("np_sin")(x) * 2.0
    np.testing.assert_allclose(ad.grad(y, [x])[0], 2 * np.cos(0.3))
    # First order also works as a gradient node, evaluated at the current values.
    (d1,) = ad.gradients(y, [x])
    np.testing.assert_allclose(ad.evaluate(d1), 2 * np.cos(0.3))
    x.value = 1.1
    np.testing.assert_allclose(ad.evaluate(d1), 2 * np.cos(1.1))
    twice = r"'np_sin'.*second-order-test.*symbolic=False.*not differentiated again"
    with pytest.raises(ad.SymbolicGradientError, match=twice):
        ad.gradients(d1, [x])
    with pytest.raises(ad.SymbolicGradientError, match=twice):
        ad.grad(d1, [x])
    with pytest.raises(ad.SymbolicGradientError, match=twice):
        ad.hessian(y, x)
    with pytest.raises(ad.GradientError):
        ad.jvp(y, [x], [1.0])
    # The graph is still usable after those errors.
    np.testing.assert_allclose(ad.grad(y, [x])[0], 2 * np.cos(1.1))


def test_numpy_only_rule_first_order_gradient_nodes_with_broadcasting(
    numpy_only_plugin: str,
) -> None:
    a0 = np.array([[0.1, -0.4, 0.7], [1.2, 0.3, -0.9]])
    with ad.Graph():
        a = ad.Variable(a0, name="a")
        b = ad.Variable(np.array([0.5, -1.5, 2.0]), name="b")
        y = ad.ops.sum(ad.ops.get("np_sin")(a * b) * 3.0)
    da, db = ad.evaluate(ad.gradients(y, [a, b]))
    np.testing.assert_allclose(da, 3 * np.cos(a0 * b.value) * b.value, rtol=1e-12)
    np.testing.assert_allclose(db, (3 * np.cos(a0 * b.value) * a0).sum(axis=0), rtol=1e-12)


def test_rule_using_an_unregistered_name_is_named(numpy_only_plugin: str) -> None:
    with ad.Graph():
        x = ad.Variable(0.3, name="x")
        y = ad.ops.get("odd_rule")(x)
    with pytest.raises(ad.SymbolicGradientError, match=r"xp.no_such_op.*'odd_rule'.*plugin"):
        ad.gradients(y, [x])


def _register_rule_op(name: str, rule: Any) -> str:
    class Plugin:
        @ad.hookimpl
        def autodag_register_ops(self) -> list[ad.OpDef]:
            return [ad.OpDef(name=name, arity=1, forward=lambda a: a * a, backward=(rule,))]

    return ad.register_plugin(Plugin(), name="frob-test")


@pytest.fixture
def only_array_loaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the array plugin loaded (the process's plugins again afterwards)."""
    monkeypatch.setenv(registry.ENV_LOAD_ONLY, "autodag-array")
    ad.reset_plugins()
    yield
    monkeypatch.undo()
    ad.reset_plugins()


def test_an_unregistered_xp_name_carries_the_registry_explanation() -> None:
    name = _register_rule_op("frob_rule", lambda xp, g, out, a: xp.frobnicate(g, a))
    try:
        with ad.Graph():
            x = ad.Variable(0.3, name="x")
            y = ad.ops.get("frob_rule")(x)
        with pytest.raises(ad.SymbolicGradientError,
                           match=r"xp.frobnicate .*'frob_rule'.*Register an op 'frobnicate'.*"
                                 r"symbolic=False \(first-order autodag.grad only\); no op "
                                 r"named 'frobnicate' is registered") as info:
            ad.gradients(y, [x])
        assert isinstance(info.value.__cause__, ad.OpNotFoundError)
    finally:
        ad.unregister_plugin(name)


def test_an_xp_name_of_a_plugin_not_loaded_names_that_plugin(only_array_loaded: None) -> None:
    name = _register_rule_op("exp_rule", lambda xp, g, out, a: g * xp.exp(a))
    try:
        with ad.Graph():
            x = ad.Variable(0.3, name="x")
            y = ad.ops.get("exp_rule")(x)
        with pytest.raises(ad.SymbolicGradientError,
                           match=r"xp.exp .*'exp_rule'.*; no op named 'exp' is registered; it "
                                 r"is provided by installed plugin 'math' \(autodag-math "
                                 r"0.1.0\), which is not loaded"):
            ad.gradients(y, [x])
    finally:
        ad.unregister_plugin(name)


def test_unknown_static_shape_is_a_clear_error() -> None:
    with ad.Graph():
        a = ad.Placeholder(name="a")
        b = ad.Variable(np.ones((3, 2)), name="b")
        y = (a @ b) @ np.ones(2)
    with pytest.raises(ad.ShapeInferenceError, match=r"'a'.*Placeholder\(shape="):
        ad.gradients(y, [b])
    with ad.Graph():
        a = ad.Placeholder(name="a", shape=(3,))
        b = ad.Variable(np.ones((3, 2)), name="b")
        y = (a @ b) @ np.ones(2)
    (gb,) = ad.gradients(y, [b])
    np.testing.assert_allclose(ad.evaluate(gb, {a: [1.0, 2.0, 3.0]}),
                               np.outer([1.0, 2.0, 3.0], np.ones(2)))


def test_non_scalar_output_needs_grad_ys() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones(3), name="x")
        y = x * x
    with pytest.raises(ad.GradientError, match=r"shape \(3,\).*grad_ys"):
        ad.gradients(y, [x])
    with pytest.raises(ad.GradientError, match=r"shape \(2,\)"):
        ad.gradients(y, [x], grad_ys=np.ones(2))
    (g,) = ad.gradients(y, [x], grad_ys=np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(ad.evaluate(g), [2.0, 4.0, 6.0])


def test_nodes_of_different_graphs_are_refused() -> None:
    with ad.Graph():
        x = ad.Variable(1.0, name="x")
    with ad.Graph():
        y = ad.Variable(1.0, name="y") * 2.0
    with pytest.raises(ad.GraphMismatchError, match="'x'"):
        ad.gradients(y, [x])


def test_graph_namespace_shape_and_ndim_use_static_shapes() -> None:
    from autodag.shapes import StaticShapes

    with ad.Graph():
        x = ad.Variable(np.ones((4, 1, 3)), name="x")
        y = ad.ops.squeeze(ad.ops.swapaxes(x, 0, 2))
    xp = GraphNamespace(ad.get_registry(), StaticShapes())
    assert xp.shape(y) == (3, 4) and xp.ndim(x) == 3 and xp.ndim(2.0) == 0


def test_hvp_through_first_party_nn_ops_matches_finite_differences() -> None:
    reg = ad.get_registry()
    needed = ("tanh", "mean", "softmax_cross_entropy")
    missing = [n for n in needed if n not in reg]
    if missing:
        pytest.skip(f"first-party plugin ops not installed: {missing}")
    rng = np.random.default_rng(4)
    with ad.Graph():
        w1 = ad.Variable(rng.standard_normal((6, 8)) / 2, name="w1")
        w2 = ad.Variable(rng.standard_normal((8, 3)) / 2, name="w2")
        data = ad.Constant(rng.standard_normal((10, 6)))
        labels = ad.Constant(rng.integers(0, 3, size=10))
        logits = ad.ops.tanh(data @ w1) @ w2
        loss = ad.ops.mean(ad.ops.softmax_cross_entropy(logits, labels))
    params = [w1, w2]
    vs = [rng.standard_normal(p.value.shape) for p in params]
    hv = ad.evaluate(ad.hessian_vector_product(loss, params, vs))
    eps = 1e-5

    def grads_at(sign: float) -> list[Any]:
        feed = {p: p.value + sign * eps * v for p, v in zip(params, vs, strict=True)}
        return ad.grad(loss, params, feed_dict=feed)

    for got, hi, lo in zip(hv, grads_at(1), grads_at(-1), strict=True):
        np.testing.assert_allclose(got, (hi - lo) / (2 * eps), rtol=1e-6, atol=1e-9)


def test_hvp_vector_of_the_wrong_shape_names_the_node() -> None:
    with ad.Graph():
        w = ad.Variable(np.ones(3), name="w")
        y = (w * w) @ np.ones(3)
    with pytest.raises(ad.GradientError, match=r"vector for 'w' has shape \(2,\).*\(3,\)"):
        ad.hessian_vector_product(y, [w], [np.ones(2)])
    (hv,) = ad.hessian_vector_product(y, [w], [np.array([1.0, 2.0, 3.0])])
    np.testing.assert_allclose(ad.evaluate(hv), [2.0, 4.0, 6.0])


def test_power_of_python_base_keeps_float32_symbolically() -> None:
    with ad.Graph():
        x = ad.Variable(np.array([0.5, 1.5], dtype=np.float32), name="x")
        y = (2**x) @ np.ones(2, dtype=np.float32)
    (g,) = ad.gradients(y, [x])
    value = ad.evaluate(g)
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, np.log(2.0) * 2.0 ** x.value, rtol=1e-6)
