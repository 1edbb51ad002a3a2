"""Random graphs on array-api-strict and Dask (and CuPy with a GPU), against the NumPy
run of the same graph.

Two families: the Hypothesis expression graphs of ``tests/test_random_graphs.py``
(``+ - * / **`` and negation with broadcasting), and a few small array graphs built by
Python loops (``tests/loopgraphs.py``: ``tanh``, ``sin``, ``exp``, ``sum``; Variables
and fed Placeholders; the case's compiler thresholds). Each graph runs through
``evaluate``, ``grad``, ``gradients`` (evaluated) and ``compile``; values and gradients
must be the NumPy run's, be arrays of the backend, and on Dask stay lazy (no graph
computed inside autodag).

Comparing with the NumPy path, not with finite differences, is acceptable here only
because the NumPy path of these very graphs is itself checked against central
differences: the expression graphs in ``tests/test_random_graphs.py``, the loop graphs
in ``tests/test_loop_fuzz.py`` (same generators, same seeds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pytest
from hypothesis import given, settings

import autodag as ad

from .backends import NUMPY, Backend, counting, is_py_number, params
from .loopgraphs import Recipe, make_case
from .test_random_graphs import programs, run

#: The NumPy run against the backend's: only summation order may differ (Dask sums
#: chunk by chunk).
RTOL: Final = 1e-10
ATOL: Final = 1e-12
#: Hypothesis examples per backend.
EXAMPLES: Final = 25
#: Loop-graph cases: graphs with array leaves of at most this many ops and repetitions
#: (and, marked slow, larger ones).
LOOP_OPS: Final = 100
LOOP_REPS: Final = 30
N_LOOP_CASES: Final = 8
SLOW_LOOP_OPS: Final = 600
N_SLOW_LOOP_CASES: Final = 6

BACKENDS: Final = params("strict", "dask", "cupy", "torch", "jax", slow=("torch", "jax"))


def _native(backend: Backend, value: Any, what: str, zero_ok: bool = False) -> Any:
    """A result of the backend as NumPy. With ``zero_ok`` (a derivative of a 0-d leaf),
    a structural zero may be the Python number 0.0 (autodag's zeros constant, on NumPy
    too)."""
    if not (zero_ok and is_py_number(value) and value == 0):
        assert backend.owns(value), (
            f"{what} on {backend.name} is a {type(value).__module__}."
            f"{type(value).__qualname__}, not an array of the backend")
    return backend.to_numpy(value)


def _same(got: Any, want: Any, what: str) -> None:
    g, w = np.asarray(got), np.asarray(want)
    assert g.shape == w.shape, f"{what}: shape {g.shape}, NumPy {w.shape}"
    assert g.dtype == w.dtype, f"{what}: dtype {g.dtype}, NumPy {w.dtype}"
    np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL, err_msg=what)


def _all_runs(out: ad.Node, wrt: Sequence[ad.Node], inputs: Sequence[ad.Node],
              feed: dict[ad.Node, Any], ones: Any) -> dict[str, tuple[Any, list[Any]]]:
    """(value, gradients) of ``out`` by every path: evaluate and grad, gradients
    evaluated (of ``sum(out * ones)``, the same as grad's), a compiled program."""
    feed_list = [feed[p] for p in inputs]
    prog = ad.compile(out, wrt=list(wrt), inputs=list(inputs))
    gs = ad.gradients(out, list(wrt), grad_ys=ones)
    return {
        "evaluate/grad": (ad.evaluate(out, feed), ad.grad(out, list(wrt), feed)),
        "gradients": (None, list(ad.evaluate(gs, feed))),
        "compile": prog(*feed_list),
    }


def _compare(backend: Backend, got: dict[str, tuple[Any, list[Any]]],
             want: dict[str, tuple[Any, list[Any]]], shapes: Sequence[tuple[int, ...]],
             what: str) -> None:
    for path, (value, grads) in got.items():
        want_value, want_grads = want[path]
        if value is not None:
            _same(_native(backend, value, f"{what}: {path} value"),
                  NUMPY.to_numpy(want_value), f"{what}: {path} value")
        assert len(grads) == len(want_grads)
        for k, (g, wg, shape) in enumerate(zip(grads, want_grads, shapes, strict=True)):
            _same(_native(backend, g, f"{what}: {path} gradient {k}", shape == ()),
                  NUMPY.to_numpy(wg), f"{what}: {path} gradient {k}")


def _lazy_runs(backend: Backend, what: str, make: Any) -> dict[str, tuple[Any, list[Any]]]:
    """``make()`` on the backend: building and every run, no dask graph computed."""
    with counting(backend) as counter:
        result: dict[str, tuple[Any, list[Any]]] = make()
    assert counter.count == 0, (
        f"{what} on {backend.name}: {counter.count} dask graph(s) computed inside autodag")
    return result


# --- the expression graphs of test_random_graphs.py --------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
@given(prog=programs())
def test_random_graphs(backend: Backend,
                       prog: tuple[list[tuple[str, int, int]], list[Any]]) -> None:
    steps, inputs = prog

    def make(b: Backend) -> dict[str, tuple[Any, list[Any]]]:
        with ad.Graph():
            nodes = [ad.Variable(b.to_backend(x), name=f"x{k}") for k, x in enumerate(inputs)]
            out = run(steps, nodes)
        ones = b.to_backend(np.ones(np.shape(run(steps, inputs))))
        return _all_runs(out, nodes, [], {}, ones)

    want = make(NUMPY)
    got = _lazy_runs(backend, f"program {steps}", lambda: make(backend))
    _compare(backend, got, want, [np.shape(x) for x in inputs], f"program {steps}")


# --- loop-built graphs of loopgraphs.py ------------------------------------------------
def _loop_cases() -> list[Any]:
    """The first cases with an array leaf (one of Python floats only runs on no
    backend) and few ops, then, marked slow, larger ones."""
    quick: list[Any] = []
    slow: list[Any] = []
    case = 0
    while len(quick) < N_LOOP_CASES or len(slow) < N_SLOW_LOOP_CASES:
        r = make_case(case)
        if any(lf.shape != () for lf in r.leaves) and r.max_reps <= 1000:
            if r.ops <= LOOP_OPS and r.max_reps <= LOOP_REPS:
                if len(quick) < N_LOOP_CASES:
                    quick.append(case)
            elif r.ops <= SLOW_LOOP_OPS and len(slow) < N_SLOW_LOOP_CASES:
                slow.append(pytest.param(case, marks=pytest.mark.slow))
        case += 1
    return quick + slow


LOOP_CASES: Final = _loop_cases()


def _loop_runs(recipe: Recipe, b: Backend) -> dict[str, tuple[Any, list[Any]]]:
    """Every run of the recipe's graph at point a, its leaves on backend ``b``."""
    with ad.Graph():
        leaves: dict[str, ad.Node] = {}
        feed: dict[ad.Node, Any] = {}
        for lf in recipe.leaves:
            value = b.to_backend(lf.value)
            if lf.placeholder:
                node: ad.Node = ad.Placeholder(
                    name=lf.name, shape=lf.shape if lf.declare_shape else None)
                feed[node] = value
            else:
                node = ad.Variable(value, name=lf.name)
            leaves[lf.name] = node
        out = recipe.fn(leaves, ad.ops.tanh, ad.ops.sin, ad.ops.exp, ad.ops.sum)
    wrt = [leaves[n] for n in recipe.wrt]
    inputs = [leaves[n] for n in recipe.inputs]
    shape = np.shape(recipe.fn(recipe.values(), np.tanh, np.sin, np.exp, np.sum))
    return _all_runs(out, wrt, inputs, feed, b.to_backend(np.ones(shape)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", LOOP_CASES)
def test_loop_graphs(case: int, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = make_case(case)
    for name, value in recipe.limits:
        monkeypatch.setattr(f"autodag.compiler.limits.{name}", value)
    want = _loop_runs(recipe, NUMPY)
    what = recipe.summary()
    got = _lazy_runs(backend, what, lambda: _loop_runs(recipe, backend))
    _compare(backend, got, want, [recipe.leaf(n).shape for n in recipe.wrt],
             f"{what}\n{recipe.source()}\n")
