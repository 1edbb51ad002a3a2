"""autodag-array's statistics, reorder, along, gather ops and split: values against NumPy
(on NumPy, array-api-strict and Dask, beyond the samples the op suites run), gradients
against central differences, and the errors of bad arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import array_api_strict
import autodag_array
import numpy as np
import pytest

import autodag as ad
from autodag import ShapeMismatchError
from tests.fd import numeric_grads

da: Any = pytest.importorskip("dask.array")
# Untyped on purpose: autodag/ops.pyi lists these ops only once regenerated
# (python -m autodag.opstubs).
ops: Any = ad.ops
_Convert = Callable[[Any], Any]

RNG_SEED: Final = 7
X: Final = np.random.default_rng(RNG_SEED).standard_normal((3, 4, 5))
IDX: Final = np.array([[0, 2, -1], [1, 1, 0], [3, 0, 2]])

# (op, input, attributes, the NumPy reference): cases the samples do not all reach.
CASES: Final[list[tuple[str, Any, dict[str, Any], Callable[[Any], Any]]]] = [
    ("min", X, {"axis": (0, 2), "keepdims": True},
     lambda a: np.min(a, axis=(0, 2), keepdims=True)),
    ("prod", X, {"axis": -1}, lambda a: np.prod(a, axis=-1)),
    ("ptp", X, {"axis": 1}, lambda a: np.ptp(a, axis=1)),
    ("var", X, {"axis": (1, 2), "ddof": 1}, lambda a: np.var(a, axis=(1, 2), ddof=1)),
    ("std", X, {"axis": 0, "keepdims": True}, lambda a: np.std(a, axis=0, keepdims=True)),
    ("median", X, {"axis": (0, 2)}, lambda a: np.median(a, axis=(0, 2))),
    ("median", X[0], {"axis": 1}, lambda a: np.median(a, axis=1)),
    ("average", X, {"axis": 2, "weights": np.arange(1.0, 6.0)},
     lambda a: np.average(a, axis=2, weights=np.arange(1.0, 6.0))),
    ("argmax", X, {"axis": None, "keepdims": True},
     lambda a: np.argmax(a, keepdims=True)),
    ("argmin", X, {"axis": -1}, lambda a: np.argmin(a, axis=-1)),
    ("argsort", X, {"axis": 1}, lambda a: np.argsort(a, axis=1)),
    ("cumsum", X, {"axis": -2}, lambda a: np.cumsum(a, axis=-2)),
    ("cumprod", X[0], {}, np.cumprod),
    ("sort", X, {"axis": None}, lambda a: np.sort(a, axis=None)),
    ("flip", X, {"axis": (0, -1)}, lambda a: np.flip(a, (0, -1))),
    ("roll", X, {"shift": (2, -1), "axis": (2, 0)}, lambda a: np.roll(a, (2, -1), (2, 0))),
    ("moveaxis", X, {"source": (2, 0), "destination": (0, 1)},
     lambda a: np.moveaxis(a, (2, 0), (0, 1))),
    ("rot90", X, {"k": 3, "axes": (2, 1)}, lambda a: np.rot90(a, 3, (2, 1))),
    ("ravel", X, {}, np.ravel),
    ("atleast_3d", X[0, 0], {}, np.atleast_3d),
    ("repeat", X[0], {"repeats": [2, 0, 1, 3], "axis": 0},
     lambda a: np.repeat(a, [2, 0, 1, 3], axis=0)),
    ("tile", X[0], {"reps": (2, 1, 2)}, lambda a: np.tile(a, (2, 1, 2))),
    ("take", X, {"indices": [[4, 0], [-1, 4]], "axis": 2},
     lambda a: np.take(a, [[4, 0], [-1, 4]], axis=2)),
    ("pad", X[0], {"pad_width": ((3, 1), (4, 0)), "mode": "reflect"},
     lambda a: np.pad(a, ((3, 1), (4, 0)), mode="reflect")),
    ("pad", X[0], {"pad_width": 2, "mode": "edge"}, lambda a: np.pad(a, 2, mode="edge")),
    ("pad", X[0], {"pad_width": ((0, 1), (2, 0)), "constant_values": -2.0},
     lambda a: np.pad(a, ((0, 1), (2, 0)), constant_values=-2.0)),
    ("diff", X, {"n": 2, "axis": 1}, lambda a: np.diff(a, 2, 1)),
]

BACKENDS: Final[dict[str, tuple[_Convert, _Convert]]] = {
    "numpy": (lambda a: a, np.asarray),
    "strict": (array_api_strict.asarray, lambda a: np.asarray(a)),
    "dask": (lambda a: da.from_array(a, chunks=2), lambda a: np.asarray(a.compute())),
}


def _ids(case: tuple[str, Any, dict[str, Any], Any]) -> str:
    return f"{case[0]}-{sorted(case[2])}"


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_values_match_numpy(case: tuple[str, Any, dict[str, Any], Any], backend: str) -> None:
    name, a, attrs, reference = case
    to, back = BACKENDS[backend]
    with ad.Graph():
        out = ad.evaluate(getattr(ops, name)(ad.Variable(to(a)), **attrs))
    np.testing.assert_allclose(back(out), reference(a), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_take_along_axis_with_data_indices_matches_numpy(backend: str) -> None:
    to, back = BACKENDS[backend]
    a = X[0, :, :3].T  # (3, 4)
    with ad.Graph():
        x = ad.Variable(to(a))
        got = ad.evaluate(ops.take_along_axis(x, ad.Constant(to(IDX)), axis=1))
        (g,) = ad.grad(ops.sum(ops.take_along_axis(x, ad.Constant(to(IDX)), axis=1)
                                  * to(np.arange(9.0).reshape(3, 3))), [x])
    np.testing.assert_allclose(back(got), np.take_along_axis(a, IDX, axis=1))
    want = np.zeros_like(a)
    np.add.at(want, (np.arange(3)[:, None], IDX), np.arange(9.0).reshape(3, 3))
    np.testing.assert_allclose(back(g), want)


def _fd_check(build: Callable[[Any], Any], ref: Callable[[Any], Any], a: Any) -> None:
    with ad.Graph():
        x = ad.Variable(a)
        (got,) = ad.grad(build(x), [x])
    (want,) = numeric_grads(ref, [a])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_a_composite_of_the_new_ops_has_finite_difference_gradients() -> None:
    a = np.random.default_rng(RNG_SEED + 1).uniform(0.5, 2.0, (3, 4))
    w = np.arange(1.0, 5.0)

    def f(x: Any, m: Any) -> Any:
        # m: the module (numpy or autodag.ops), so both sides spell the same formula.
        z = m.cumsum(m.flip(m.roll(x, 1, axis=1), axis=0), axis=1)
        s = m.sort(m.pad(z, ((1, 0), (0, 2)), mode="reflect"), axis=-1)
        return (m.sum(m.var(s, axis=0, ddof=1)) + m.sum(m.std(m.tile(x, (1, 2)), axis=1))
                + m.sum(m.average(x, axis=1, weights=w) * m.median(x, axis=1))
                + m.sum(m.min(x, axis=0) * m.ptp(x, axis=1)[:, None].T[0, :1])
                + m.sum(m.prod(x, axis=0)) + m.sum(m.cumprod(m.ravel(x)))
                + m.sum(m.diff(m.repeat(x, [1, 2, 0, 1], axis=1), 2, 0) ** 2)
                + m.sum(m.take(m.rot90(x), [0, 3, 3], axis=0)))

    _fd_check(lambda x: f(x, ops), lambda x: f(x, np), a)


def test_min_and_median_share_the_gradient_of_ties() -> None:
    a = np.array([[1.0, -2.0, -2.0, 4.0], [3.0, 3.0, 0.0, 5.0]])
    with ad.Graph():
        x = ad.Variable(a)
        (gmin,) = ad.grad(ops.sum(ops.min(x, axis=1)), [x])
        (gmed,) = ad.grad(ops.sum(ops.median(x, axis=1)), [x])
    np.testing.assert_array_equal(gmin, [[0, 0.5, 0.5, 0], [0, 0, 1, 0]])
    # row 0: middles -2 (shared by two) and 1; row 1: middles 3 and 3 (shared).
    np.testing.assert_array_equal(gmed, [[0.5, 0.25, 0.25, 0], [0.5, 0.5, 0, 0]])


def test_second_order_of_var_matches_its_closed_form() -> None:
    a = np.random.default_rng(RNG_SEED + 2).standard_normal(5)
    with ad.Graph():
        x = ad.Variable(a)
        h = ad.hessian(ops.var(x, ddof=1), x)
        hv = ad.evaluate(h)
    n = a.size
    np.testing.assert_allclose(hv, 2 * (np.eye(n) - 1 / n) / (n - 1), atol=1e-12)


def test_split_and_array_split_return_lists_of_nodes() -> None:
    a = np.arange(14.0).reshape(2, 7)
    with ad.Graph():
        x = ad.Variable(a)
        pieces = autodag_array.array_split(x, 3, axis=1)
        assert all(isinstance(p, ad.Node) for p in pieces)
        for got, want in zip(pieces, np.array_split(a, 3, axis=1), strict=True):
            np.testing.assert_array_equal(ad.evaluate(got), want)
        parts = autodag_array.split(x, [2, 5], axis=-1)
        for got, want in zip(parts, np.split(a, [2, 5], axis=-1), strict=True):
            np.testing.assert_array_equal(ad.evaluate(got), want)
        loss = ops.sum(parts[0]) + ops.sum(parts[1] * 2.0) + ops.sum(parts[2] * 3.0)
        (g,) = ad.grad(loss, [x])
        evens = autodag_array.split(x, 2, axis=0)
        np.testing.assert_array_equal(ad.evaluate(evens[1]), a[1:])
        with pytest.raises(ValueError, match="equal sections"):
            autodag_array.split(x, 3, axis=1)
    np.testing.assert_array_equal(g[0], [1, 1, 2, 2, 2, 3, 3])


@pytest.mark.parametrize(("name", "attrs"), [
    ("min", {"axis": 3}), ("var", {"axis": (0, 0)}), ("median", {"axis": -4}),
    ("cumsum", {"axis": 3}), ("flip", {"axis": 5}), ("moveaxis", {"source": 3,
                                                                   "destination": 0}),
])
@pytest.mark.parametrize("backend", ["numpy", "strict"])
def test_bad_axes_name_the_op(name: str, attrs: dict[str, Any], backend: str) -> None:
    to, _ = BACKENDS[backend]
    with ad.Graph(), pytest.raises((ShapeMismatchError, np.exceptions.AxisError)):
        ad.evaluate(getattr(ops, name)(ad.Variable(to(X)), **attrs))


def test_pad_refuses_other_modes() -> None:
    with ad.Graph(), pytest.raises(Exception, match="mode"):
        ad.evaluate(ops.pad(ad.Variable(X[0]), 1, mode="wrap"))


def test_prod_gradient_is_exact_at_zeros() -> None:
    a = np.array([[0.0, 2.0, -1.5], [0.0, 0.0, 3.0], [1.2, 0.7, -0.8]])
    w = np.array([1.0, -2.0, 0.5])
    _fd_check(lambda x: ops.sum(ops.prod(x, axis=1) * w),
              lambda x: np.prod(x, axis=1) * w, a)
    _fd_check(lambda x: ops.prod(x), np.prod, a[2:] * a[:1, ::-1])


def test_numpy_split_on_a_node_returns_a_list_of_nodes() -> None:
    a = np.arange(18.0).reshape(3, 6)
    with ad.Graph():
        x: Any = ad.Variable(a)  # NumPy's stubs do not know nodes take its functions
        pieces: list[Any] = np.split(x, 3, axis=1)
        uneven: list[Any] = np.array_split(x, 4, axis=1)
        points: list[Any] = np.split(x, [1], axis=0)
        for got, want in zip([*pieces, *uneven, *points],
                             [*np.split(a, 3, axis=1), *np.array_split(a, 4, axis=1),
                              *np.split(a, [1], axis=0)], strict=True):
            assert isinstance(got, ad.Node)
            np.testing.assert_array_equal(ad.evaluate(got), want)
        loss = ops.sum(pieces[0] * pieces[2]) + ops.sum(uneven[1] ** 2)
        (g,) = ad.grad(loss, [x])
        with pytest.raises(ValueError, match="equal sections"):
            np.split(x, 4, axis=1)
    want = np.zeros_like(a)
    want[:, 0:2], want[:, 4:6] = a[:, 4:6], a[:, 0:2]
    want[:, 2:4] += 2 * a[:, 2:4]
    np.testing.assert_array_equal(g, want)


def test_split_ops_give_one_piece() -> None:
    a = np.arange(10.0)
    with ad.Graph():
        x = ad.Variable(a)
        last = ops.array_split(x, 3, section=-1)
        middle = ops.split(x, (2, 7), section=1)
        np.testing.assert_array_equal(ad.evaluate(last), np.array_split(a, 3)[-1])
        np.testing.assert_array_equal(ad.evaluate(middle), a[2:7])
        (g,) = ad.grad(ops.sum(middle * middle), [x])
        with pytest.raises(ShapeMismatchError, match="section 3"):
            ad.evaluate(ops.split(x, 2, section=3))
    np.testing.assert_array_equal(g, np.where((a >= 2) & (a < 7), 2 * a, 0.0))


def test_atleast_nd_of_several_nodes_is_a_tuple() -> None:
    with ad.Graph():
        x: Any = ad.Variable(np.arange(3.0))
        y: Any = ad.Variable(2.0)
        one: Any = np.atleast_2d(y)
        pair: Any = np.atleast_1d(x, y)
        triple: Any = np.atleast_3d(x, y, x)
        assert isinstance(one, ad.Node) and isinstance(pair, tuple) and len(triple) == 3
        np.testing.assert_array_equal(ad.evaluate(one), np.atleast_2d(2.0))
        for nodes, arrays in ((pair, np.atleast_1d(np.arange(3.0), 2.0)),
                              (triple, np.atleast_3d(np.arange(3.0), 2.0, np.arange(3.0)))):
            for got, want in zip(nodes, arrays, strict=True):
                np.testing.assert_array_equal(ad.evaluate(got), want)


@pytest.mark.parametrize(("axis", "w_shape"), [(None, (3, 4)), (1, (4,)), (0, (3, 4))])
def test_average_with_node_weights_differentiates_them(axis: Any,
                                                       w_shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(RNG_SEED + 3)
    a, w = rng.standard_normal((3, 4)), rng.uniform(0.5, 2.0, w_shape)
    cos = np.cos(np.arange(np.size(np.average(a, axis=axis, weights=w))))

    def ref(x: Any, v: Any) -> Any:
        return np.sum(np.average(x, axis=axis, weights=v) * cos)

    with ad.Graph():
        x: Any = ad.Variable(a)
        v: Any = ad.Variable(w)
        y = ref(x, v)
        np.testing.assert_allclose(ad.evaluate(y), ref(a, w), rtol=1e-12)
        grads = ad.grad(y, [x, v])
        with pytest.raises(ShapeMismatchError, match="average: "):
            np.average(x, axis=axis, weights=ops.reshape(v, (-1,))[:2])
    for got, want in zip(grads, numeric_grads(ref, [a, w]), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
