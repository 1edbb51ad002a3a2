"""Graphs: naming, nesting, the default graph, sorting, threads."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import autodag as ad


def test_default_names_come_from_per_graph_counters() -> None:
    with ad.Graph() as g1:
        a = ad.Variable(1.0)
        b = ad.Constant(2.0)
        p = ad.Placeholder()
        s = a + b
        m = a * b
    with ad.Graph() as g2:
        c = ad.Variable(1.0)
        t = c + c
    names = [a.name, b.name, p.name, s.name, m.name]
    assert names == ["Var/0", "Const/0", "Plc/0", "add/0", "mul/0"]
    assert [c.name, t.name] == ["Var/0", "add/0"]
    assert a.graph is g1 and t.graph is g2


def test_nested_graphs_and_default_graph() -> None:
    outer_default = ad.get_default_graph()
    with ad.Graph() as outer:
        x = ad.Variable(1.0)
        with ad.Graph() as inner:
            y = ad.Variable(2.0)
            assert ad.get_default_graph() is inner
            with pytest.raises(ad.GraphMismatchError, match="different graphs"):
                _ = x + y
            with pytest.raises(ad.GraphMismatchError, match="enclosing 'with' block"):
                _ = x * 2
        assert ad.get_default_graph() is outer
        z = x * 3
    assert ad.get_default_graph() is outer_default
    assert y.graph is inner and z.graph is outer
    # After the with block, nodes still know their graph.
    w = x + 1
    assert w.graph is outer
    assert ad.evaluate(w) == 2.0


def test_variable_outside_with_joins_default_graph() -> None:
    v = ad.Variable(5.0)
    assert v.graph is ad.get_default_graph()
    assert v in ad.get_default_graph().variables


def test_constant_cannot_be_reassigned() -> None:
    c = ad.Constant(1.0)
    with pytest.raises(ValueError, match="cannot reassign"):
        c.value = 2.0
    assert c.value == 1.0


def test_long_chain_sorts_and_differentiates() -> None:
    with ad.Graph():
        x = ad.Variable(1.0, name="x")
        y: Any = x
        for _ in range(100_000):
            y = y + 1.0
    order = ad.topological_sort(y)
    assert len(order) == 200_001
    (gx,) = ad.grad(y, [x])
    assert float(gx) == 1.0
    assert ad.evaluate(y) == 100_001.0


def test_topological_sort_without_head_covers_the_graph() -> None:
    with ad.Graph() as g:
        x = ad.Variable(1.0)
        a = x * 2
        b = x + 3
    order = ad.topological_sort(graph=g)
    assert set(order) >= {x, a, b}
    assert order.index(x) < order.index(a) and order.index(x) < order.index(b)


def test_two_threads_evaluate_one_graph() -> None:
    with ad.Graph():
        p = ad.Placeholder(name="p")
        w = ad.Variable(np.arange(3.0), name="w")
        z = (p * w) ** 2
    results: dict[int, Any] = {}

    def work(k: int) -> None:
        for _ in range(50):
            val = np.full(3, float(k))
            (gw,) = ad.grad(z, [w], {p: val})
            np.testing.assert_allclose(gw, 2 * val**2 * w.value)
        results[k] = ad.evaluate(z, {p: np.full(3, float(k))})

    threads = [threading.Thread(target=work, args=(k,)) for k in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in (1, 2, 3):
        np.testing.assert_allclose(results[k], (k * np.arange(3.0)) ** 2)
