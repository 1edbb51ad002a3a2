"""NumPy's functions and ufuncs on nodes build the registered op of the same name.

Values are checked against NumPy on the nodes' values, gradients against hand-derived
formulas; a function no loaded plugin provides, ``np.asarray(node)``, ``out=`` and
``array == node`` are clear ``NumpyFunctionError``s, never a silently wrong answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag import registry

from .isolation import FIRST_PARTY

X = np.array([0.5, 1.0, 2.0])
A = np.array([[3.0, 1.0], [1.0, 2.0]])


def _has(*names: str) -> bool:
    return all(n in ad.get_registry().ops for n in names)


def test_dot_of_two_vectors_is_their_inner_product() -> None:
    # The reported bug: np.dot(x, x) used to be an elementwise product [0.25, 1, 4].
    with ad.Graph():
        x: Any = ad.Variable(X.copy(), name="x")  # NumPy's stubs type arrays only
        y: Any = np.dot(x, x)
    assert isinstance(y, ad.Node)
    assert float(ad.evaluate(y)) == pytest.approx(5.25)
    np.testing.assert_allclose(ad.grad(y, [x])[0], 2 * X)


@pytest.mark.parametrize(("fn", "want", "grad"), [
    (lambda x: np.sum(x), X.sum(), np.ones(3)),
    (lambda x: np.sum(x, axis=0), X.sum(), np.ones(3)),
    (lambda x: np.max(x), 2.0, np.array([0.0, 0.0, 1.0])),
    (lambda x: np.mean(x), X.mean(), np.full(3, 1 / 3)),
    (lambda x: np.sum(np.sin(x)), np.sin(X).sum(), np.cos(X)),
    (lambda x: np.sum(np.exp(x) * 2.0), 2 * np.exp(X).sum(), 2 * np.exp(X)),
    (lambda x: np.sum(np.concatenate([x, x])), 2 * X.sum(), np.full(3, 2.0)),
    (lambda x: np.sum(np.ones(3) + x), 3 + X.sum(), np.ones(3)),
    (lambda x: np.sum(np.arange(3.0) * x), (np.arange(3.0) * X).sum(), np.arange(3.0)),
    (lambda x: np.sum(np.maximum(x, 1.0)), 1 + 1 + 2, np.array([0.0, 0.5, 1.0])),
    (lambda x: np.sum(np.negative(x)), -X.sum(), -np.ones(3)),
    (lambda x: np.sum(np.abs(-x)), X.sum(), np.ones(3)),
    (lambda x: np.sum(np.reshape(x, (3, 1)) @ np.ones((1, 2))), 2 * X.sum(), np.full(3, 2.0)),
], ids=["sum", "sum-axis", "max", "mean", "sin", "exp", "concatenate", "ndarray+node",
        "ndarray*node", "maximum", "negative", "absolute", "reshape"])
def test_numpy_calls_build_nodes(fn: Any, want: float, grad: Any) -> None:
    with ad.Graph():
        x = ad.Variable(X.copy(), name="x")
        y = fn(x)
    assert isinstance(y, ad.Node), f"got {type(y).__name__}, not a node"
    assert float(ad.evaluate(y)) == pytest.approx(want)
    np.testing.assert_allclose(ad.grad(y, [x])[0], grad, atol=1e-12)


@pytest.mark.skipif(not _has("linalg_solve", "linalg_slogdet"), reason="autodag-linalg")
def test_numpy_linalg_functions_are_the_linalg_ops() -> None:
    b = np.array([1.0, -1.0])
    with ad.Graph():
        a: Any = ad.Variable(A.copy(), name="a")
        y: Any = np.sum(np.linalg.solve(a, b))
    assert float(ad.evaluate(y)) == pytest.approx(np.linalg.solve(A, b).sum())
    # d/dA sum(A^-1 b) = -(A^-T 1)(A^-1 b)^T, by hand.
    want = -np.outer(np.linalg.solve(A.T, np.ones(2)), np.linalg.solve(A, b))
    np.testing.assert_allclose(ad.grad(y, [a])[0], want, rtol=1e-12)
    assert ad.ops.linalg.solve.__name__ == "linalg_solve"


def test_shape_questions_are_answered_statically() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones((2, 3)), name="x")
        p = ad.Placeholder(name="p")
    assert (np.shape(x), np.ndim(x), np.size(x)) == ((2, 3), 2, 6)  # type: ignore[arg-type]
    with pytest.raises(ad.NumpyFunctionError, match=r"numpy.shape of node 'p'"):
        np.shape(p)


@pytest.mark.parametrize(("call", "match"), [
    (lambda x: np.asarray(x), r"node 'x' is a graph node.*autodag.evaluate"),
    (lambda x: np.array([x, x]), r"node 'x' is a graph node"),
    (lambda x: np.fft.fft(x), r"numpy\.fft\.fft was called on an autodag node.*'fft_fft'"),
    (lambda x: np.sum(x, out=np.zeros(())), r"numpy\.sum.*does not take 'out'"),
    (lambda x: np.sin(x, out=np.zeros(3)), r"numpy\.sin.*does not take 'out'"),
    (lambda x: np.add.reduce(x), r"numpy\.add\.reduce is not supported"),
    (lambda x: np.ones(3) == x, r"nodes compare by identity.*autodag\.ops\.equal"),
], ids=["asarray", "array-of-nodes", "no-op", "out", "ufunc-out", "reduce", "equality"])
def test_what_numpy_cannot_do_on_nodes_is_a_clear_error(call: Any, match: str) -> None:
    with ad.Graph() as g:
        x = ad.Variable(X.copy(), name="x")
        before = len(g.nodes)
        with pytest.raises(ad.NumpyFunctionError, match=match) as info:
            call(x)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ad.AutodagError)
    assert len(g.nodes) == before, "nothing half-built joined the graph"


@pytest.fixture
def math_left_out(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every first-party plugin loaded but autodag-math."""
    monkeypatch.setenv(registry.ENV_LOAD_ONLY,
                       ",".join(d for d in FIRST_PARTY if d != "autodag-math"))
    ad.reset_plugins()
    yield
    monkeypatch.undo()
    ad.reset_plugins()


def test_a_function_of_an_unloaded_plugin_names_it(math_left_out: None) -> None:
    with ad.Graph():
        x = ad.Variable(X.copy(), name="x")
        with pytest.raises(ad.NumpyFunctionError,
                           match=r"numpy\.sin .*'sin'.*provided by installed plugin "
                                 r"'math' \(autodag-math"):
            np.sin(x)


def test_node_methods_and_operators_of_the_new_ops() -> None:
    m = np.array([[1.0, 4.0], [3.0, 2.0]])
    with ad.Graph():
        x = ad.Variable(m.copy(), name="x")
        calls = {"min": x.min(), "prod": x.prod(axis=0), "var": x.var(ddof=1),
                 "std": x.std(axis=1), "argmax": x.argmax(), "argmin": x.argmin(axis=0),
                 "cumsum": x.cumsum(axis=1), "ravel": x.ravel(), "mod": x % 3.0,
                 "rmod": 7.0 % x}
    want = {"min": m.min(), "prod": m.prod(axis=0), "var": m.var(ddof=1),
            "std": m.std(axis=1), "argmax": m.argmax(), "argmin": m.argmin(axis=0),
            "cumsum": m.cumsum(axis=1), "ravel": m.ravel(), "mod": m % 3.0, "rmod": 7.0 % m}
    for name, node in calls.items():
        np.testing.assert_allclose(ad.evaluate(node), want[name], err_msg=name)
    # d var(x, ddof=1) / dx = 2 (x - mean) / (n - 1), by hand.
    np.testing.assert_allclose(ad.grad(calls["var"], [x])[0], 2 * (m - m.mean()) / 3)
