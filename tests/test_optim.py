"""Optimizers: single steps against hand-derived updates, minima against known optima."""

from __future__ import annotations

import numpy as np
import pytest

import autodag as ad
from autodag.optim import SGD, Adam, Optimizer


def rosenbrock() -> tuple[ad.Variable, ad.Variable, ad.Node]:
    with ad.Graph():
        a = ad.Variable(-1.5, name="a")
        b = ad.Variable(2.0, name="b")
        f = (1.0 - a) ** 2 + 100.0 * (b - a * a) ** 2
    return a, b, f


def least_squares(
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, ad.Variable, ad.Node]:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(40, 5))
    b = rng.normal(size=40)
    with ad.Graph():
        w = ad.Variable(np.zeros(5), name="w")
        r = A @ w - b
        loss = r @ r
    return A, b, w, loss


def test_sgd_momentum_minimises_rosenbrock() -> None:
    a, b, f = rosenbrock()
    opt = SGD([a, b], lr=1e-3, momentum=0.9)
    for _ in range(5000):
        opt.step(ad.grad(f, opt.params))
    # The minimum of (1 - a)^2 + 100 (b - a^2)^2 is f = 0 at (1, 1).
    assert float(a.value) == pytest.approx(1.0, abs=1e-6)
    assert float(b.value) == pytest.approx(1.0, abs=1e-6)


def test_adam_minimises_rosenbrock() -> None:
    a, b, f = rosenbrock()
    opt = Adam([a, b], lr=0.05)
    for step in range(3000):
        opt.step(ad.grad(f, opt.params))
        if step in (1500, 2250):
            opt.lr /= 5
    assert float(a.value) == pytest.approx(1.0, abs=1e-3)
    assert float(b.value) == pytest.approx(1.0, abs=1e-3)
    assert ad.evaluate(f) < 1e-7


def test_sgd_solves_least_squares_like_lstsq() -> None:
    A, b, w, loss = least_squares()
    expected = np.linalg.lstsq(A, b, rcond=None)[0]
    # Step 1/L for the loss's Lipschitz constant L = 2 * largest eigenvalue of A^T A.
    lr = 1.0 / np.linalg.eigvalsh(2 * A.T @ A).max()
    opt = SGD([w], lr=lr, momentum=0.9)
    for _ in range(500):
        opt.step(ad.grad(loss, [w]))
    np.testing.assert_allclose(w.value, expected, atol=1e-9)


def test_adam_solves_least_squares_like_lstsq_from_stored_gradients() -> None:
    A, b, w, loss = least_squares(seed=1)
    expected = np.linalg.lstsq(A, b, rcond=None)[0]
    order = ad.topological_sort(loss)
    opt = Adam([w], lr=0.1)
    for step in range(1500):
        opt.zero_grad()
        ad.forward_pass(order)
        ad.backward_pass(order)
        opt.step()  # reads w.gradient
        if step % 300 == 299:
            opt.lr /= 4
    np.testing.assert_allclose(w.value, expected, atol=1e-6)


def test_sgd_steps_match_hand_derived_updates() -> None:
    with ad.Graph():
        w = ad.Variable(np.array([1.0, -2.0]), name="w")
    opt = SGD([w], lr=0.1, momentum=0.5, weight_decay=0.01)
    g1, g2 = np.array([0.5, 1.0]), np.array([-1.0, 2.0])
    p0 = np.array([1.0, -2.0])
    d1 = g1 + 0.01 * p0
    p1 = p0 - 0.1 * d1
    opt.step([g1])
    np.testing.assert_allclose(w.value, p1)
    v2 = 0.5 * d1 + (g2 + 0.01 * p1)
    opt.step([g2])
    np.testing.assert_allclose(w.value, p1 - 0.1 * v2)


def test_nesterov_step_matches_formula() -> None:
    with ad.Graph():
        w = ad.Variable(np.array([0.0]), name="w")
    opt = SGD([w], lr=1.0, momentum=0.9, nesterov=True)
    opt.step([np.array([1.0])])  # v = 1, step = g + 0.9 v = 1.9
    np.testing.assert_allclose(w.value, [-1.9])
    opt.step([np.array([1.0])])  # v = 1.9, step = 1 + 0.9 * 1.9 = 2.71
    np.testing.assert_allclose(w.value, [-1.9 - 2.71])


def test_adam_first_steps_match_hand_derived_updates() -> None:
    with ad.Graph():
        w = ad.Variable(np.array([1.0, 1.0, 1.0]), name="w")
    opt = Adam([w], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    g1 = np.array([3.0, -0.5, 0.0])
    # Bias-corrected first step: m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps).
    opt.step([g1])
    np.testing.assert_allclose(w.value, 1.0 - 0.01 * g1 / (np.abs(g1) + 1e-8))
    g2 = np.array([1.0, 1.0, 1.0])
    m = 0.9 * 0.1 * g1 + 0.1 * g2
    v = 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    expected = w.value - 0.01 * (m / (1 - 0.9**2)) / (np.sqrt(v / (1 - 0.999**2)) + 1e-8)
    opt.step([g2])
    np.testing.assert_allclose(w.value, expected)


def test_updates_float_arrays_in_place_and_replaces_scalars() -> None:
    arr = np.array([1.0, 2.0])
    with ad.Graph():
        w = ad.Variable(arr, name="w")
        s = ad.Variable(3.0, name="s")
        k = ad.Variable(np.array([1, 2]), name="k")
    SGD([w, s, k], lr=0.5).step([np.ones(2), 2.0, np.ones(2)])
    assert w.value is arr
    np.testing.assert_allclose(arr, [0.5, 1.5])
    assert isinstance(s.value, float) and s.value == 2.0
    assert k.value.dtype == np.float64
    np.testing.assert_allclose(k.value, [0.5, 1.5])


def test_step_without_gradient_names_the_variable() -> None:
    with ad.Graph():
        w = ad.Variable(1.0, name="weight")
        loss = w * w
    order = ad.topological_sort(loss)
    opt = SGD([w], lr=0.1)
    ad.forward_pass(order)
    ad.backward_pass(order)
    opt.step()
    assert float(w.value) == pytest.approx(1.0 - 0.1 * 2.0)
    opt.zero_grad()
    assert w.gradient is None
    with pytest.raises(ValueError, match="'weight' has no gradient"):
        opt.step()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda w: SGD([w], lr=0.0), "lr must be a positive number"),
        (lambda w: SGD([w], lr=float("nan")), "lr must be a positive number"),
        (lambda w: SGD([w], momentum=-1.0), "momentum"),
        (lambda w: SGD([w], nesterov=True), "nesterov"),
        (lambda w: Adam([w], betas=(1.0, 0.9)), r"betas\[0\]"),
        (lambda w: SGD([w, w]), "given twice"),
        (lambda w: SGD([]), "no parameters"),
    ],
)
def test_bad_settings_are_rejected(make: object, match: str) -> None:
    with ad.Graph():
        w = ad.Variable(1.0, name="w")
    with pytest.raises(ValueError, match=match):
        make(w)  # type: ignore[operator]


def test_bad_parameters_and_gradients_are_rejected() -> None:
    with ad.Graph():
        w = ad.Variable(np.zeros(3), name="w")
        c = ad.Constant(1.0, name="c")
    with pytest.raises(TypeError, match="must be Variables, got Constant 'c'"):
        SGD([w, c], lr=0.1)  # type: ignore[list-item]
    opt: Optimizer = Adam([w])
    with pytest.raises(ValueError, match="got 2 gradients for 1 parameters"):
        opt.step([np.zeros(3), np.zeros(3)])
    with pytest.raises(ValueError, match=r"shape \(2,\) for Variable 'w' of shape \(3,\)"):
        opt.step([np.zeros(2)])
    assert opt.steps == 0


def test_state_and_updates_keep_a_float32_parameters_dtype() -> None:
    with ad.Graph():
        w = ad.Variable(np.array([1.0, -2.0], dtype=np.float32), name="w")
        loss = ad.ops.sum(w * w)
    for opt in (ad.optim.Adam([w], lr=0.1), ad.optim.SGD([w], lr=0.1, momentum=0.9)):
        before = w.value.copy()
        opt.step(ad.grad(loss, [w]))
        assert w.value.dtype == np.float32
        states = [s for s in (getattr(opt, "m", [None])[0], getattr(opt, "v", [None])[0],
                              getattr(opt, "velocity", [None])[0]) if s is not None]
        assert states and all(s.dtype == np.float32 for s in states)
        # One step against the gradient 2w, by hand: Adam moves each entry by lr.
        expected = (before - 0.1 * np.sign(before) if isinstance(opt, ad.optim.Adam)
                    else before - 0.1 * 2 * before)
        np.testing.assert_allclose(w.value, expected, rtol=1e-6)
        w.value = before
