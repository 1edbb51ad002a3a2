"""autodag-nn: every op gradient-checked, stable at +-1000, values against plain formulas."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Final

import array_api_strict
import numpy as np
import pytest
from autodag_nn.plugin import OPS

import autodag as ad
from autodag.testing import check_op
from tests.backends import ComputeCounter
from tests.fd import numeric_grads


@pytest.mark.parametrize("name", [op.name for op in OPS])
def test_every_op_passes_check_op(name: str) -> None:
    assert ad.get_registry().get(name).plugin.distribution == "autodag-nn"
    check_op(name)


EXTREME = np.array([[-1000.0, 0.0, 1000.0], [1000.0, 999.0, -1000.0]])
BUILDERS: list[tuple[str, Callable[[Any], Any]]] = [
    ("relu", ad.ops.relu),
    ("sigmoid", ad.ops.sigmoid),
    ("softplus", ad.ops.softplus),
    ("softmax", ad.ops.softmax),
    ("log_softmax", ad.ops.log_softmax),
    ("logsumexp", lambda x: ad.ops.logsumexp(x, axis=1)),
    ("logsumexp-all", ad.ops.logsumexp),
    ("sce-int", lambda x: ad.ops.softmax_cross_entropy(x, np.array([0, 2]))),
    ("sce-probs", lambda x: ad.ops.softmax_cross_entropy(x, np.full((2, 3), 1 / 3))),
]


@pytest.mark.parametrize(("label", "build"), BUILDERS, ids=[b[0] for b in BUILDERS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_overflow_or_nan_at_extreme_inputs(
    label: str, build: Callable[[Any], Any], dtype: type
) -> None:
    with ad.Graph(), np.errstate(over="raise", invalid="raise", divide="raise"):
        x = ad.Variable(EXTREME.astype(dtype))
        z = build(x)
        value = ad.evaluate(z)
        (g,) = ad.grad(z, [x])
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(g))


def test_values_at_extreme_inputs_against_hand_derived_limits() -> None:
    x = np.array([-1000.0, 1000.0])
    with ad.Graph():
        v = ad.Variable(x)
        np.testing.assert_array_equal(ad.evaluate(ad.ops.sigmoid(v)), [0.0, 1.0])
        np.testing.assert_array_equal(ad.evaluate(ad.ops.softplus(v)), [0.0, 1000.0])
        assert ad.evaluate(ad.ops.logsumexp(v)) == 1000.0
        np.testing.assert_array_equal(ad.evaluate(ad.ops.log_softmax(v)), [-2000.0, 0.0])
        assert ad.evaluate(ad.ops.softmax_cross_entropy(v, np.array(0))) == 2000.0


def naive_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)  # type: ignore[no-any-return]


def test_values_at_moderate_inputs_against_naive_formulas() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3))
    labels = np.array([2, 0, 1, 1])
    with ad.Graph():
        v = ad.Variable(x)
        np.testing.assert_allclose(ad.evaluate(ad.ops.sigmoid(v)), 1 / (1 + np.exp(-x)))
        np.testing.assert_allclose(ad.evaluate(ad.ops.softplus(v)), np.log(1 + np.exp(x)))
        np.testing.assert_allclose(ad.evaluate(ad.ops.softmax(v, axis=0)), naive_softmax(x, 0))
        np.testing.assert_allclose(ad.evaluate(ad.ops.logsumexp(v, axis=1, keepdims=True)),
                                   np.log(np.exp(x).sum(axis=1, keepdims=True)))
        np.testing.assert_allclose(
            ad.evaluate(ad.ops.softmax_cross_entropy(v, labels)),
            -np.log(naive_softmax(x)[np.arange(4), labels]))


def test_integer_labels_and_one_hot_labels_agree() -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 4))
    labels = np.array([3, 0, 1, 3, 2])
    onehot = np.eye(4)[labels]
    with ad.Graph():
        v = ad.Variable(x)
        li = ad.ops.softmax_cross_entropy(v, labels)
        lo = ad.ops.softmax_cross_entropy(v, onehot)
        np.testing.assert_allclose(ad.evaluate(li), ad.evaluate(lo))
        np.testing.assert_allclose(ad.grad(li, [v])[0], ad.grad(lo, [v])[0])
        # Hand-derived: d loss / d logits = softmax(x) - onehot.
        np.testing.assert_allclose(ad.grad(li, [v])[0], naive_softmax(x) - onehot)


def test_probability_labels_get_gradients_too() -> None:
    rng = np.random.default_rng(7)
    x, p = rng.standard_normal((2, 3)), naive_softmax(rng.standard_normal((2, 3)))

    def f(x: np.ndarray, p: np.ndarray) -> np.ndarray:
        return -(p * np.log(naive_softmax(x))).sum(axis=-1)  # type: ignore[no-any-return]

    with ad.Graph():
        vx, vp = ad.Variable(x), ad.Variable(p)
        got = ad.grad(ad.ops.softmax_cross_entropy(vx, vp), [vx, vp])
    for g, ref in zip(got, numeric_grads(f, [x, p]), strict=True):
        np.testing.assert_allclose(g, ref, rtol=1e-6, atol=1e-8)


def test_bad_labels_are_reported_with_the_op() -> None:
    with ad.Graph():
        v = ad.Variable(np.zeros((2, 3)))
        with pytest.raises(ad.OpExecutionError, match=r"class indices must be in \[0, 3\)"):
            ad.evaluate(ad.ops.softmax_cross_entropy(v, np.array([0, 3])))
        with pytest.raises(ad.OpExecutionError, match=r"labels of shape \(3,\) do not match"):
            ad.evaluate(ad.ops.softmax_cross_entropy(v, np.array([0, 1, 2])))


def test_labels_rule_is_not_run_for_integer_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    # Integer labels are not differentiable: the engine must skip their rule, which is
    # the only caller of xp.float_only in the first-order gradient.
    op = ad.get_registry().get("softmax_cross_entropy").opdef
    assert op.vjps is not None and len(op.vjps) == 2
    xp = ad.get_registry().numeric
    original = xp.float_only
    calls: list[int] = []

    def counting(h: Any, labels: Any) -> Any:
        calls.append(1)
        return original(h, labels)

    monkeypatch.setattr(xp, "float_only", counting)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 4))
    labels = np.array([1, 0, 3])
    with ad.Graph():
        v = ad.Variable(x)
        (g,) = ad.grad(ad.ops.mean(ad.ops.softmax_cross_entropy(v, labels)), [v])
        np.testing.assert_allclose(g, (naive_softmax(x) - np.eye(4)[labels]) / 3)
        assert not calls
        p = ad.Variable(naive_softmax(rng.standard_normal((3, 4))))
        ad.grad(ad.ops.sum(ad.ops.softmax_cross_entropy(v, p)), [v, p])
        assert calls  # probability labels do get their rule run


def test_unnormalised_probability_labels_scale_the_softmax_term() -> None:
    # Hand-derived: d/dx of -sum(p * log_softmax(x)) is softmax(x) * sum(p) - p.
    rng = np.random.default_rng(9)
    x, p = rng.standard_normal((3, 4)), np.exp(rng.standard_normal((3, 4)))
    with ad.Graph():
        v = ad.Variable(x)
        (g,) = ad.grad(ad.ops.softmax_cross_entropy(v, p), [v])
    np.testing.assert_allclose(g, naive_softmax(x) * p.sum(axis=-1, keepdims=True) - p)


def test_float32_logits_keep_float32_through_loss_and_gradient() -> None:
    x = np.random.default_rng(10).standard_normal((4, 3)).astype(np.float32)
    with ad.Graph():
        v = ad.Variable(x)
        loss = ad.ops.mean(ad.ops.softmax_cross_entropy(v, np.array([0, 2, 1, 1])))
        assert np.result_type(ad.evaluate(loss)) == np.float32
        (g,) = ad.grad(loss, [v])
    assert g.dtype == np.float32


def test_integer_labels_ignore_minus_infinity_logits_of_other_classes() -> None:
    x = np.array([[0.0, -np.inf, 1.0], [2.0, 0.5, -np.inf]])
    with ad.Graph():
        v = ad.Variable(x)
        loss = ad.ops.softmax_cross_entropy(v, np.array([2, 0]))
        got = ad.evaluate(loss)
    want = [np.log(1 + np.exp(1.0)) - 1.0, np.log(1 + np.exp(-1.5))]  # hand-derived
    np.testing.assert_allclose(got, want)


def test_a_batch_of_short_rows_matches_the_hand_derived_loss_and_gradient() -> None:
    # 64 rows of 10 classes take the reductions through a transposed copy.
    rng = np.random.default_rng(7)
    for dtype, tol in [(np.float64, 1e-12), (np.float32, 1e-5)]:
        z = (3 * rng.standard_normal((64, 10))).astype(dtype)
        y = rng.integers(0, 10, 64)
        with ad.Graph():
            zn = ad.Placeholder(name="z", dtype=dtype)
            loss = ad.ops.mean(ad.ops.softmax_cross_entropy(zn, y))
        prog = ad.compile(loss, wrt=[zn], inputs=[zn])
        value, (g,) = prog(z)
        z64 = z.astype(np.float64)
        m = z64.max(axis=1, keepdims=True)
        p = np.exp(z64 - m) / np.exp(z64 - m).sum(axis=1, keepdims=True)
        ref_loss = np.mean(-np.log(p[np.arange(64), y]))
        p[np.arange(64), y] -= 1
        assert g.dtype == dtype and np.asarray(value).dtype == dtype
        assert float(value) == pytest.approx(ref_loss, rel=tol)
        np.testing.assert_allclose(g, p / 64, rtol=tol * 10, atol=tol / 64)


# --- other array libraries: what a lazy library cannot check, and dtypes -------------------
_da: Any = importlib.import_module("dask.array")


_LOGITS: Final = np.random.default_rng(8).standard_normal((3, 4))
_BAD: Final = np.array([0, 9, 2])  # class 9 of 4


def test_out_of_range_labels_are_an_error_where_they_can_be_checked() -> None:
    sce = ad.get_registry().get("softmax_cross_entropy").opdef.forward
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 4\), got 0\.\.9"):
        sce(array_api_strict.asarray(_LOGITS), array_api_strict.asarray(_BAD), axis=-1)
    with ComputeCounter() as computes, pytest.raises(ValueError, match="class indices"):
        sce(_da.from_array(_LOGITS, chunks=2), _BAD, axis=-1)  # NumPy labels, Dask logits
    assert computes.count == 0


def test_out_of_range_lazy_labels_give_nan_without_computing() -> None:
    reg = ad.get_registry()
    logits, labels = _da.from_array(_LOGITS, chunks=2), _da.from_array(_BAD, chunks=2)
    with ComputeCounter() as computes:
        loss = reg.get("softmax_cross_entropy").opdef.forward(logits, labels, axis=-1)
        grad = reg.get("sce_grad").opdef.forward(np.ones(3), logits, labels, axis=-1)
        probs = reg.get("class_probs").opdef.forward(labels, logits, axis=-1)
    assert computes.count == 0
    good = np.array([0, 0, 2])
    want = reg.get("softmax_cross_entropy").opdef.forward(_LOGITS, good, axis=-1)
    np.testing.assert_allclose(loss.compute(), [want[0], np.nan, want[2]])
    for v in (grad.compute(), probs.compute()):
        assert np.isnan(v[1]).all() and not np.isnan(v[[0, 2]]).any()


def test_sce_grad_keeps_the_logits_dtype_on_other_libraries_as_on_numpy() -> None:
    sce_grad = ad.get_registry().get("sce_grad").opdef.forward
    z = _LOGITS.astype(np.float32)
    for labels in (np.array([0, 3, 1]), np.full((3, 4), 0.25, dtype=np.float32)):
        want = sce_grad(np.ones(3), z, labels, axis=-1)  # g float64: NumPy works in place
        got = sce_grad(array_api_strict.asarray(np.ones(3)), array_api_strict.asarray(z),
                       array_api_strict.asarray(labels), axis=-1)
        assert got.dtype == array_api_strict.float32 and want.dtype == np.float32
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)


@pytest.mark.parametrize("name", [op.name for op in OPS])
def test_every_op_declares_it_runs_on_any_backend(name: str) -> None:
    assert ad.get_registry().get(name).opdef.array_api
