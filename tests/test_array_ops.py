"""autodag-array: every op gradient-checked, node sugar, indexing semantics (on NumPy and,
for the indexing helpers the array API lacks, on array-api-strict and Dask)."""

from __future__ import annotations

import importlib
from typing import Any, Final

import array_api_strict
import numpy as np
import pytest
from autodag_array import indexing
from autodag_array.plugin import OPS

import autodag as ad
from autodag.backend import BackendError
from autodag.testing import check_op
from tests.backends import ComputeCounter
from tests.fd import numeric_grads


@pytest.mark.parametrize("name", [op.name for op in OPS])
def test_every_op_passes_check_op(name: str) -> None:
    assert ad.get_registry().get(name).plugin.distribution == "autodag-array"
    check_op(name)


def test_node_sugar_values_and_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 4))
    idx = np.array([0, 3, 3])

    def f(a: np.ndarray) -> Any:
        return (a.sum(axis=0) * a.mean() + a.T.reshape(2, 6)[1].max()
                + a[1:, idx].sum(axis=1, keepdims=True) * a.max(axis=-1, keepdims=True)[1:])

    with ad.Graph():
        x = ad.Variable(a)
        z = (x.sum(axis=0) * x.mean() + x.T.reshape(2, 6)[1].max()
             + x[1:, idx].sum(axis=1, keepdims=True) * x.max(axis=-1, keepdims=True)[1:])
        np.testing.assert_allclose(ad.evaluate(z), f(a))
        (g,) = ad.grad(z, [x])
    np.testing.assert_allclose(g, numeric_grads(f, [a])[0], rtol=1e-6, atol=1e-8)


def test_repeated_indices_accumulate_like_add_at() -> None:
    with ad.Graph():
        x = ad.Variable(np.zeros(4))
        (g,) = ad.grad(x[np.array([1, 1, 3, 1])] * np.array([1.0, 2.0, 3.0, 4.0]), [x])
    np.testing.assert_array_equal(g, [0.0, 7.0, 0.0, 3.0])  # hand-derived: 1+2+4 and 3


def test_list_index_means_what_it_means_to_numpy() -> None:
    a = np.arange(12.0).reshape(3, 4)
    with ad.Graph():
        x = ad.Variable(a)
        np.testing.assert_array_equal(ad.evaluate(x[[0, 2]]), a[[0, 2]])
        np.testing.assert_array_equal(ad.evaluate(x[1:, [0, 0]]), a[1:, [0, 0]])
        np.testing.assert_array_equal(ad.evaluate(x[..., None, 1]), a[..., None, 1])
        (g,) = ad.grad(x[x.value[:, 0] > 1], [x])
    np.testing.assert_array_equal(g, [[0.0] * 4, [1.0] * 4, [1.0] * 4])


def test_concatenate_and_stack_route_gradients_to_each_input() -> None:
    with ad.Graph():
        a, b = ad.Variable(np.ones((2, 1))), ad.Variable(np.ones((2, 3)))
        w = np.arange(8.0).reshape(2, 4)
        ga, gb = ad.grad(ad.ops.concatenate([a, b], axis=-1) * w, [a, b])
        np.testing.assert_array_equal(ga, w[:, :1])
        np.testing.assert_array_equal(gb, w[:, 1:])
        s = ad.ops.stack([a * 2, a, a], axis=1)
        assert ad.evaluate(s).shape == (2, 3, 1)
        (gs,) = ad.grad(s * np.arange(3.0)[:, None], [a])
    np.testing.assert_array_equal(gs, [[3.0], [3.0]])  # hand-derived: 2*0 + 1 + 2


def test_stop_gradient_blocks_the_gradient_but_not_the_value() -> None:
    with ad.Graph():
        x = ad.Variable(np.array([1.0, 2.0]))
        z = x * ad.ops.stop_gradient(x)
        np.testing.assert_array_equal(ad.evaluate(z), [1.0, 4.0])
        (g,) = ad.grad(z, [x])
    np.testing.assert_array_equal(g, [1.0, 2.0])


def test_max_ties_share_the_gradient() -> None:
    with ad.Graph():
        x = ad.Variable(np.array([[3.0, 1.0, 3.0], [0.0, 2.0, 1.0]]))
        (g,) = ad.grad(x.max(axis=1), [x])
    np.testing.assert_array_equal(g, [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])


def test_float32_stays_float32_through_reductions() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones((2, 3), dtype=np.float32))
        z = x.mean(axis=0).sum() + x[0].max()
        assert ad.evaluate(z).dtype == np.float32
        assert ad.grad(z, [x])[0].dtype == np.float32


def test_bad_shapes_are_reported_with_the_op() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones((2, 3)))
        with pytest.raises(ad.OpExecutionError, match="op 'reshape'"):
            ad.evaluate(x.reshape(4, 2))


def test_list_index_is_integer_array_indexing_both_ways() -> None:
    x_val = np.arange(12.0).reshape(3, 4)
    with ad.Graph():
        x = ad.Variable(x_val, name="x")
        by_op = ad.ops.getitem(x, [0, 2])
        by_sugar = x[[0, 2]]
    for node in (by_op, by_sugar):
        np.testing.assert_array_equal(ad.evaluate(node), x_val[[0, 2]])
    (g,) = ad.grad(by_op, [x])
    np.testing.assert_array_equal(g, np.array([[1.0] * 4, [0.0] * 4, [1.0] * 4]))


@pytest.mark.parametrize("name", ["sum", "mean"])
def test_sum_and_mean_forward_agree_with_numpy_in_value_and_dtype(name: str) -> None:
    rng = np.random.default_rng(11)
    forward = ad.get_registry().get(name).opdef.forward
    ref = getattr(np, name)
    arrays = [rng.standard_normal((2, 3)), rng.standard_normal((4,)).astype(np.float32),
              rng.integers(-5, 5, (3, 2)), rng.standard_normal((2, 3)) > 0,
              np.float32(1.5), np.array(2.0)]
    for a in arrays:
        for axis, keepdims in [(None, False), (None, True), (0, False), (-1, True)]:
            if np.ndim(a) == 0 and axis is not None:
                continue
            got, want = forward(a, axis=axis, keepdims=keepdims), ref(a, axis=axis,
                                                                      keepdims=keepdims)
            np.testing.assert_array_equal(got, want)
            assert np.result_type(got) == np.result_type(want), (name, a, axis, keepdims)


def test_sum_and_mean_keep_python_scalars_as_python_scalars() -> None:
    reg = ad.get_registry()
    assert reg.get("sum").opdef.forward(2.5, axis=None, keepdims=False) == 2.5
    assert type(reg.get("sum").opdef.forward(3, axis=None, keepdims=False)) is int
    assert type(reg.get("mean").opdef.forward(3, axis=None, keepdims=False)) is float
    with ad.Graph():
        x = ad.Variable(1.5)
        loss = ad.ops.sum(x * x) + ad.ops.mean(x)
        assert ad.evaluate(loss) == 1.5 * 1.5 + 1.5
        (g,) = ad.grad(loss, [x])
    assert g == pytest.approx(2 * 1.5 + 1)  # hand-derived


def test_mean_gradient_of_float32_stays_float32_and_writeable_when_small() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    with ad.Graph():
        x = ad.Variable(a)
        (g,) = ad.grad(ad.ops.mean(x), [x])
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, np.full((2, 3), 1 / 6, dtype=np.float32))


# --- other array libraries: indexing, whose gradient the array API has no function for ---
_da: Any = importlib.import_module("dask.array")


_X: Final = np.random.default_rng(5).standard_normal((4, 5))
INDEXES: Final[list[Any]] = [
    np.array([3, 0, 3, 3]),
    (slice(1, None), np.array([0, 2, 2])),
    (np.array([[0, 1], [1, 3]]), np.array([[4, 4], [0, 2]])),
    _X[:, 0] > 0,
    _X > 0,
    [0, 0, 2],
    (np.array([1, 3]), slice(None), None),
    (np.array([0, 2]), 1),
    (Ellipsis, None, -1),
    (slice(None, None, -2), slice(1, 4, 2)),
    np.int64(2),
    (),
    np.array([], dtype=np.intp),
]


def _on(backend: str, a: np.ndarray[Any, Any]) -> Any:
    if backend == "strict":
        return array_api_strict.asarray(a)
    return _da.from_array(a, chunks=(2, *a.shape[1:]) if a.ndim else ())


def _back(v: Any) -> np.ndarray[Any, Any]:
    return np.asarray(v.compute() if isinstance(v, _da.Array) else v)


@pytest.mark.parametrize("index", INDEXES, ids=repr)
def test_positions_are_numpys_reading_of_the_index(index: Any) -> None:
    want = np.arange(_X.size).reshape(_X.shape)[index]
    got = indexing._positions(index, _X.shape)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", ["strict", "dask"])
@pytest.mark.parametrize("index", INDEXES, ids=repr)
def test_getitem_and_its_gradient_on_other_libraries_are_numpys(backend: str,
                                                                index: Any) -> None:
    reg = ad.get_registry()
    getitem, scatter_add = reg.get("getitem").opdef.forward, reg.get("scatter_add").opdef.forward
    g = np.random.default_rng(6).standard_normal(_X[index].shape)
    want = np.zeros_like(_X)
    np.add.at(want, index, g)
    with ComputeCounter() as computes:
        picked = getitem(_on(backend, _X), index=index)
        spread = scatter_add(_on(backend, g), _on(backend, _X), index=index)
    assert computes.count == 0  # Dask stays lazy
    for v in (picked, spread):
        assert not isinstance(v, (np.ndarray, np.generic))  # never NumPy's arrays
    np.testing.assert_array_equal(_back(picked), _X[index])
    np.testing.assert_allclose(_back(spread), want, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("backend", ["strict", "dask"])
def test_scatter_add_sums_repeats_of_any_count_as_add_at(backend: str) -> None:
    rng = np.random.default_rng(7)
    index = np.concatenate([np.full(300, 2), rng.integers(0, 6, 40), [5, 5, 5, 0]])
    rng.shuffle(index)
    like = rng.standard_normal((6, 3))
    g = rng.standard_normal((index.size, 3))
    want = np.zeros_like(like)
    np.add.at(want, index, g)
    got = ad.get_registry().get("scatter_add").opdef.forward(
        _on(backend, g), _on(backend, like), index=index)
    np.testing.assert_allclose(_back(got), want, rtol=1e-12)


def test_a_dynamic_index_of_another_library_is_a_backend_error() -> None:
    x = array_api_strict.asarray(_X)
    index = (array_api_strict.asarray(np.array([0, 1])), array_api_strict.asarray(np.array([2, 2])))
    with pytest.raises(BackendError, match=r"scatter_add on array_api_strict.*static"):
        ad.get_registry().get("scatter_add").opdef.forward(x[index], x, index=index)


@pytest.mark.parametrize("name", [op.name for op in OPS])
def test_every_op_declares_it_runs_on_any_backend(name: str) -> None:
    assert ad.get_registry().get(name).opdef.array_api
