"""Every operator-overloading form, with numbers, NumPy scalars and arrays on either side."""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import autodag as ad

BINARY: list[tuple[str, Callable[[Any, Any], Any]]] = [
    ("add", operator.add),
    ("subtract", operator.sub),
    ("multiply", operator.mul),
    ("divide", operator.truediv),
    ("power", operator.pow),
]

OTHERS: list[Any] = [2.0, 3, np.float64(1.5), np.float32(2.5), np.array([1.0, 2.0, 3.0])]


@pytest.mark.parametrize(("op_name", "fn"), BINARY)
@pytest.mark.parametrize("other", OTHERS, ids=lambda o: type(o).__name__)
def test_binary_both_sides(op_name: str, fn: Callable[[Any, Any], Any], other: Any) -> None:
    with ad.Graph():
        x = ad.Variable(np.array([0.5, 1.5, 2.0]), name="x")
        left = fn(x, other)
        right = fn(other, x)
    for node, expected in ((left, fn(x.value, other)), (right, fn(other, x.value))):
        assert isinstance(node, ad.Operator), type(node)
        assert node.op.name == op_name
        np.testing.assert_allclose(ad.evaluate(node), expected)


def test_node_with_node_and_unary() -> None:
    with ad.Graph():
        x = ad.Variable(3.0)
        y = ad.Variable(4.0)
        exprs = {
            "add": (x + y, 7.0), "sub": (x - y, -1.0), "mul": (x * y, 12.0),
            "div": (x / y, 0.75), "pow": (x**y, 81.0), "neg": (-x, -3.0), "pos": (+x, 3.0),
        }
    for _key, (node, expected) in exprs.items():
        assert ad.evaluate(node) == pytest.approx(expected)


def test_matmul_both_sides_with_arrays() -> None:
    a = np.arange(6.0).reshape(2, 3)
    v = np.array([1.0, -1.0, 2.0])
    with ad.Graph():
        x = ad.Variable(v, name="x")
        m = ad.Variable(a, name="m")
        left = a @ x  # a NumPy array on the left must give a node
        right = m @ v
        both = m @ x
    for node in (left, right, both):
        assert isinstance(node, ad.Operator)
        np.testing.assert_allclose(ad.evaluate(node), a @ v)


def test_array_on_left_gives_node_not_object_array() -> None:
    arr = np.array([1.0, 2.0])
    with ad.Graph():
        x = ad.Variable(np.array([3.0, 4.0]))
        for node in (arr + x, arr * x, arr - x, arr / x, arr**x, np.float64(2) * x):
            assert isinstance(node, ad.Node)


def test_identity_equality_and_hashing() -> None:
    with ad.Graph():
        x = ad.Variable(1.0)
        y = ad.Variable(1.0)
    assert x == x and x != y
    assert len({x: 1, y: 2}) == 2


def test_unsupported_operand_is_type_error() -> None:
    with ad.Graph():
        x = ad.Variable(1.0)
    with pytest.raises(TypeError):
        _ = x + "a"
    with pytest.raises(TypeError):
        _ = object() * x


def test_nodes_are_not_iterable() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones(3), name="x")
    with pytest.raises(TypeError, match="not iterable"):
        list(x)


def test_operators_on_numbers_build_what_the_op_functions_build() -> None:
    # `x * 2.0` takes a shortcut past make_operator: the same nodes, names and sites.
    with ad.Graph() as g1:
        x = ad.Placeholder(name="x")
        a, line = 2 * x + 1.5, sys._getframe().f_lineno
    with ad.Graph() as g2:
        y = ad.Placeholder(name="x")
        b = ad.ops.add(ad.ops.multiply(2, y), 1.5)
    assert [n.name for n in g1.nodes] == [n.name for n in g2.nodes]
    assert [type(n) for n in g1.nodes] == [type(n) for n in g2.nodes]
    consts = list(g1.constants)
    assert [c.value for c in consts] == [2, 1.5] and type(consts[0].value) is int
    assert all(n.site == (__file__, line) for n in g1.nodes if n is not x)
    assert a.inputs[0].inputs[1] is x and a.graph is g1 and b.graph is g2
    assert ad.evaluate(a, {x: 3.0}) == ad.evaluate(b, {y: 3.0}) == 7.5
    assert g1.version == len(g1.nodes) == 5
