"""Bad input gets clear errors naming what is wrong, and leaves the graph usable."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import autodag as ad


def test_shape_mismatch_names_op_nodes_shapes_plugin_and_site() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones((2, 3)), name="x")
        y = ad.Variable(np.ones(4), name="y")
        z = x + y  # the site reported below
        ok = x * 2
    with pytest.raises(ad.ShapeMismatchError) as info:
        ad.evaluate(z)
    msg = str(info.value)
    for part in ("'add'", "'x'", "'y'", "(2, 3)", "(4,)", "builtin", "test_errors.py:"):
        assert part in msg, (part, msg)
    assert isinstance(info.value, ValueError)
    np.testing.assert_array_equal(ad.evaluate(ok), np.full((2, 3), 2.0))
    y.value = np.ones(3)
    np.testing.assert_array_equal(ad.evaluate(z), np.full((2, 3), 2.0))


def test_matmul_mismatch_is_named() -> None:
    with ad.Graph():
        a = ad.Variable(np.ones((2, 3)), name="A")
        b = ad.Variable(np.ones((4, 2)), name="B")
        z = a @ b
    with pytest.raises(ad.ShapeMismatchError, match=r"'matmul'.*'A'.*\(2, 3\).*'B'.*\(4, 2\)"):
        ad.grad(z, [a])


def test_missing_feed_names_placeholder() -> None:
    with ad.Graph():
        p = ad.Placeholder(name="inputs")
        z = p * 2
    with pytest.raises(ad.MissingFeedError, match="'inputs'"):
        ad.evaluate(z)
    assert ad.evaluate(z, {p: 3.0}) == 6.0


def test_bad_feed_shape_is_named() -> None:
    with ad.Graph():
        p = ad.Placeholder(name="batch", shape=(None, 3))
        z = p * 2
    with pytest.raises(ValueError, match=r"'batch'.*\(2, 2\).*\(None, 3\)"):
        ad.evaluate(z, {p: np.ones((2, 2))})


@pytest.mark.parametrize("bad", ["abc", np.array(["a", "b"]), np.array([object()]), None,
                                 [[1, 2], [3]], {"a": 1}])
def test_non_numeric_values_are_type_errors(bad: Any) -> None:
    with pytest.raises(TypeError, match=r"numeric|rectangular"):
        ad.Variable(bad, name="v")
    with pytest.raises(TypeError):
        ad.Constant(bad)
    v = ad.Variable(1.0, name="v")
    with pytest.raises(TypeError):
        v.value = bad
    assert v.value == 1.0


def _plugin(op: ad.OpDef) -> object:
    class Plugin:
        @ad.hookimpl
        def autodag_register_ops(self) -> list[ad.OpDef]:
            return [op]

    return Plugin()


@pytest.mark.parametrize(
    ("backward", "match"),
    [
        (lambda xp, g, out, a, b: (g,), "returned 1 gradients for 2 inputs"),
        (lambda xp, g, out, a, b: (g, np.ones(7)), r"shape \(7,\).*input 1"),
    ],
)
def test_bad_backward_is_named(backward: Any, match: str) -> None:
    plugin = _plugin(ad.OpDef(name="badop", arity=2, forward=lambda a, b: a + b,
                              backward=backward))
    ad.register_plugin(plugin, name="bad-plugin")
    try:
        with ad.Graph():
            x = ad.Variable(np.ones(3), name="x")
            z = ad.ops.get("badop")(x, x)
            ok = x * 3
        with pytest.raises(ad.GradientError, match=match) as info:
            ad.grad(z, [x])
        assert "badop" in str(info.value) and "bad-plugin" in str(info.value)
        np.testing.assert_array_equal(ad.grad(ok, [x])[0], np.full(3, 3.0))
    finally:
        ad.unregister_plugin(plugin)


def test_unknown_op_lists_close_matches() -> None:
    with pytest.raises(ad.OpNotFoundError, match="matmul"):
        ad.ops.matmull  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError):
        ad.ops.no_such_thing_at_all  # type: ignore[attr-defined]  # noqa: B018


def test_backward_pass_before_forward_is_explained() -> None:
    with ad.Graph():
        x = ad.Variable(1.0)
        z = x * 2
    with pytest.raises(ValueError, match="forward_pass"):
        ad.backward_pass(ad.topological_sort(z))


def test_backward_rule_that_raises_is_named_in_every_tier() -> None:
    plugin = _plugin(ad.OpDef(name="crashy", arity=1, forward=lambda a: a * 2,
                              backward=(lambda xp, g, out, a: g @ np.ones((7, 7)),)))
    ad.register_plugin(plugin, name="crashy-plugin")
    try:
        with ad.Graph():
            x = ad.Variable(np.ones(3), name="x")
            z = ad.ops.get("crashy")(x)
        for _ in range(3):  # interpreted first, generated code once the plan is reused
            with pytest.raises(ad.GradientError, match=r"'crashy'.*crashy-plugin.*matmul"):
                ad.grad(z, [x])
        prog = ad.compile(z, wrt=[x])
        with pytest.raises(ad.GradientError, match=r"'crashy'.*crashy-plugin"):
            prog()
    finally:
        ad.unregister_plugin(plugin)


def test_wrt_from_another_graph_is_an_error() -> None:
    with ad.Graph():
        x = ad.Variable(1.0, name="x")
        z = x * 2
    with ad.Graph():
        w = ad.Variable(np.ones(2), name="w")
    with pytest.raises(ad.GraphMismatchError, match="'w'"):
        ad.grad(z, [w])
