"""Forward mode (jvp) against finite differences and against reverse mode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag.opdef import Sample

from .test_second_order_ops import _cases, build


@pytest.mark.parametrize(("name", "sample"), _cases())
def test_jvp_of_every_op_matches_finite_differences_and_reverse_mode(
    name: str, sample: Sample | None
) -> None:
    assert sample is not None, f"op {name!r} has no samples to check its derivatives on"
    rng = np.random.default_rng(2)
    xs, y, _ = build(name, sample, rng)
    if not xs:
        pytest.skip(f"op {name!r}: this sample has no differentiable float input")
    base = [x.value for x in xs]
    ts = [rng.standard_normal(np.shape(b)) for b in base]
    got = ad.jvp(y, xs, ts)
    eps = 1e-6

    def at(sign: float) -> Any:
        feed = {x: b + sign * eps * t for x, b, t in zip(xs, base, ts, strict=True)}
        return np.asarray(ad.evaluate(y, feed), dtype=np.float64)

    fd = (at(1) - at(-1)) / (2 * eps)
    assert np.shape(got) == np.shape(fd)
    np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-6)
    # <J t, w> = <t, J^T w>: forward mode agrees with the numeric reverse pass.
    w = rng.standard_normal(np.shape(fd))
    with y.graph:
        weighted = y * ad.Constant(w)
    back = ad.grad(weighted, xs)
    rhs = sum(float(np.sum(t * g)) for t, g in zip(ts, back, strict=True))
    assert float(np.sum(np.asarray(got) * w)) == pytest.approx(rhs, rel=1e-10, abs=1e-12)


def test_jvp_reuses_its_tangent_graph_and_follows_feeds() -> None:
    with ad.Graph() as graph:
        x = ad.Placeholder(name="x", shape=(2,))
        y = x * x * x
    first = ad.jvp(y, x, np.array([1.0, 0.0]), feed_dict={x: np.array([2.0, 3.0])})
    size = len(graph)
    second = ad.jvp(y, x, np.array([0.0, 1.0]), feed_dict={x: np.array([2.0, 3.0])})
    assert len(graph) == size
    np.testing.assert_allclose(first, [12.0, 0.0])
    np.testing.assert_allclose(second, [0.0, 27.0])


def test_jvp_of_outputs_that_do_not_depend_on_inputs_is_zero() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones(3), name="x")
        u = ad.Variable(np.ones(2), name="u")
        y = u * 2.0
    np.testing.assert_array_equal(ad.jvp([y], [x], [np.ones(3)])[0], np.zeros(2))


def test_jvp_nodes_are_differentiable() -> None:
    # d/dx (x^3 . t) along t again: the tangent is a node, so it has a gradient.
    with ad.Graph():
        x = ad.Variable(np.array([1.0, 2.0]), name="x")
        y = x * x * x
    (t,) = ad.jvp_nodes(y, [x], [np.array([1.0, 1.0])])
    (g,) = ad.gradients(t, [x], grad_ys=np.ones(2))
    np.testing.assert_allclose(ad.evaluate(t), 3 * x.value**2)
    np.testing.assert_allclose(ad.evaluate(g), 6 * x.value)


CALLS: list[str] = []


def _cube_jvp(xp: Any, tangents: Any, out: Any, a: Any) -> Any:
    CALLS.append("jvp")
    (ta,) = tangents
    return 3 * a * a * ta


@pytest.fixture
def cube_plugin() -> Iterator[str]:
    class Plugin:
        @ad.hookimpl
        def autodag_register_ops(self) -> list[ad.OpDef]:
            return [ad.OpDef(name="cube", arity=1, forward=lambda a: a * a * a,
                             backward=(lambda xp, g, out, a: 3 * g * a * a,), jvp=_cube_jvp)]

    name = ad.register_plugin(Plugin(), name="jvp-rule-test")
    try:
        yield name
    finally:
        ad.unregister_plugin(name)


def test_an_ops_own_jvp_rule_is_used(cube_plugin: str) -> None:
    CALLS.clear()
    with ad.Graph():
        x = ad.Variable(np.array([1.0, -2.0]), name="x")
        y = ad.ops.get("cube")(x) + x
    got = ad.jvp(y, [x], [np.array([0.5, 1.0])])
    assert CALLS == ["jvp"]
    np.testing.assert_allclose(got, (3 * x.value**2 + 1) * np.array([0.5, 1.0]))


def test_tangent_of_the_wrong_shape_is_refused() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones(3), name="x")
        y = x * x
    with pytest.raises(ad.AutodagError, match="'x'"):
        ad.jvp_nodes(y, [x], [np.ones(2)])
