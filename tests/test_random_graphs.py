"""Hypothesis-generated expression graphs checked against finite differences."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import autodag as ad

from .fd import numeric_grads


@st.composite
def programs(draw: st.DrawFn) -> tuple[list[tuple[str, int, int]], list[np.ndarray[Any, Any]]]:
    shape_sets: list[list[tuple[int, ...]]] = [
        [(3,), (3,), ()], [(2, 3), (3,), (2, 1)], [(), (), ()]
    ]
    shapes = draw(st.sampled_from(shape_sets))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    inputs = [rng.uniform(0.5, 1.5, size=s) for s in shapes]
    n_steps = draw(st.integers(1, 8))
    steps = []
    for k in range(n_steps):
        avail = len(inputs) + k
        op = draw(st.sampled_from(["add", "subtract", "multiply", "divide", "power", "negate"]))
        steps.append((op, draw(st.integers(0, avail - 1)), draw(st.integers(0, avail - 1))))
    return steps, inputs


def run(steps: list[tuple[str, int, int]], xs: list[Any]) -> Any:
    """The program on any operands (arrays or nodes): the reference and the graph alike."""
    vals = list(xs)
    for op, i, j in steps:
        a, b = vals[i], vals[j]
        if op == "add":
            vals.append(a + b)
        elif op == "subtract":
            vals.append(a - b)
        elif op == "multiply":
            vals.append(a * b)
        elif op == "divide":
            vals.append(a / (b * b + 1.0))
        elif op == "power":
            vals.append((a * a + 1.0) ** 0.5)
        else:
            vals.append(-a)
    return vals[-1]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(programs())
def test_random_graph_gradients(prog: tuple[list[tuple[str, int, int]], list[Any]]) -> None:
    steps, inputs = prog
    with ad.Graph():
        nodes = [ad.Variable(x) for x in inputs]
        out = run(steps, nodes)
    got = ad.grad(out, nodes)
    want = numeric_grads(lambda *xs: run(steps, list(xs)), inputs)
    for g, w in zip(got, want, strict=False):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)
