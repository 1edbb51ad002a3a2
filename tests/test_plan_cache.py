"""grad and evaluate reuse a plan per (output, wrt) and drop it when the graph grows."""

from __future__ import annotations

import numpy as np
import pytest

import autodag as ad
from autodag import execute
from autodag.compiler import limits
from autodag.compiler.plan import Plan
from autodag.interpreter import Interpreted


def _plans(g: ad.Graph) -> dict[object, object]:
    entry = g.cache.get(execute._PLANS)
    return {} if entry is None else entry[1]


def test_plan_is_reused_and_variable_values_are_read_each_call() -> None:
    with ad.Graph() as g:
        x = ad.Variable(2.0, name="x")
        y = ad.Variable(3.0, name="y")
        z = x * x * y
    assert [float(v) for v in ad.grad(z, [x, y])] == [12.0, 4.0]
    assert isinstance(_plans(g)[((z,), (x, y))], Interpreted)
    x.value = 5.0
    assert [float(v) for v in ad.grad(z, [x, y])] == [30.0, 25.0]
    plan = _plans(g)[((z,), (x, y))]
    assert isinstance(plan, Plan)  # seen again and small: compiled
    y.value = 1.0
    assert [float(v) for v in ad.grad(z, [x, y])] == [10.0, 25.0]
    y.value = 3.0
    assert _plans(g)[((z,), (x, y))] is plan
    assert ad.evaluate(z) == 75.0
    assert ad.evaluate(z, {x: 1.0}) == 3.0  # a fed Variable overrides its value


def test_adding_a_node_invalidates_plans() -> None:
    with ad.Graph() as g:
        x = ad.Variable(np.array([1.0, 2.0]), name="x")
        z = ad.ops.sum(x * x)
    np.testing.assert_array_equal(ad.grad(z, [x])[0], [2.0, 4.0])
    old = _plans(g)[((z,), (x,))]
    with g:
        w = z * 3
    np.testing.assert_array_equal(ad.grad(w, [x])[0], [6.0, 12.0])
    assert ((z,), (x,)) not in _plans(g)  # the stale plans went with the old version
    np.testing.assert_array_equal(ad.grad(z, [x])[0], [2.0, 4.0])
    assert _plans(g)[((z,), (x,))] is not old


def test_placeholders_are_fed_every_call_and_missing_feeds_named() -> None:
    with ad.Graph():
        p = ad.Placeholder(name="inputs")
        w = ad.Variable(2.0, name="w")
        z = p * w
    assert [float(v) for v in ad.grad(z, [w], {p: 3.0})] == [3.0]
    assert [float(v) for v in ad.grad(z, [w], {"inputs": 7.0})] == [7.0]
    with pytest.raises(ad.MissingFeedError, match="'inputs'"):
        ad.grad(z, [w])


def test_cached_plan_keeps_errors_naming_things() -> None:
    with ad.Graph():
        a = ad.Variable(np.ones((2, 3)), name="A")
        b = ad.Variable(np.ones((3, 2)), name="B")
        z = a @ b
    assert ad.grad(z, [a])[0].shape == (2, 3)
    b.value = np.ones((4, 2))
    with pytest.raises(ad.ShapeMismatchError, match=r"'matmul'.*'A'.*\(2, 3\).*'B'.*\(4, 2\)"):
        ad.grad(z, [a])


def test_plans_for_many_distinct_requests_stay_bounded() -> None:
    with ad.Graph() as g:
        x = ad.Variable(1.0, name="x")
        outs = [x * float(k) for k in range(5)]
    for _ in range(3):
        for k, o in enumerate(outs):
            assert float(ad.grad(o, [x])[0]) == float(k)
    assert len(_plans(g)) <= limits.MAX_PLANS
    assert len(_plans(g)) == 5


def test_large_plans_stay_interpreted_until_compiling_pays_off() -> None:
    with ad.Graph() as g:
        x = ad.Variable(1.0, name="x")
        y = x
        for _ in range(limits.COMPILE_AT_ONCE):
            y = y * 1.0 + 1.0
    for _ in range(3):
        assert float(ad.grad(y, [x])[0]) == 1.0
        assert ad.evaluate(y) == 1.0 + limits.COMPILE_AT_ONCE
    plan = _plans(g)[((y,), (x,))]
    assert isinstance(plan, Interpreted) and plan.calls == 3
    plan.spent = len(plan.order) * limits.COMPILE_COST  # as if it had run that long
    assert float(ad.grad(y, [x])[0]) == 1.0
    assert isinstance(_plans(g)[((y,), (x,))], Plan)
    assert float(ad.grad(y, [x])[0]) == 1.0


def test_interpreted_and_compiled_plans_agree_on_errors() -> None:
    with ad.Graph():
        a = ad.Variable(np.ones((2, 3)), name="A")
        b = ad.Variable(np.ones((4, 2)), name="B")
        z = a @ b
    for _ in range(3):  # interpreted, then compiled
        with pytest.raises(ad.ShapeMismatchError, match=r"'matmul'.*'A'.*\(2, 3\).*'B'"):
            ad.grad(z, [a])
