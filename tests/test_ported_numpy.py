"""Code written for plain NumPy runs on nodes unchanged, through ``np.*`` calls.

Each function below is ordinary NumPy code (it is also run on NumPy arrays, as the
reference for values); given autodag nodes it builds a graph through NumPy's dispatch
(``autodag.npcalls``), and its gradients are compared with central finite differences
in float64 of the same function on NumPy arrays (``tests/fd.py``). The CNN uses the nn
plugin's ``conv2d`` and ``max_pool2d``, which NumPy has no function for: passed in, as
a NumPy port would pass its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import autodag as ad

from .fd import numeric_grads

RNG = np.random.default_rng(13)
NEEDED = ("dot", "einsum", "linalg_slogdet", "linalg_solve", "linalg_norm", "conv2d",
          "max_pool2d", "softmax")
pytestmark = pytest.mark.skipif(
    not all(n in ad.get_registry().ops for n in NEEDED),
    reason="needs the first-party plugins (autodag-linalg, autodag-nn)")


# --- plain NumPy code ---------------------------------------------------------------------
def gaussian_nll(x: Any, mu: Any, cov: Any) -> Any:
    """Negative log-likelihood of x under N(mu, cov)."""
    d = x - mu
    _sign, logdet = np.linalg.slogdet(cov)
    maha = np.dot(d, np.linalg.solve(cov, d))
    return 0.5 * (logdet + maha + x.shape[0] * np.log(2 * np.pi))


def attention(q: Any, k: Any, v: Any) -> Any:
    """One attention head: softmax(q k^T / sqrt(d)) v, summed."""
    scores = np.einsum("id,jd->ij", q, k) / np.sqrt(q.shape[-1])
    scores = scores - np.max(scores, axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights = weights / np.sum(weights, axis=-1, keepdims=True)
    return np.sum(np.einsum("ij,jd->id", weights, v) ** 2)


def ridge(w: Any, x: Any, y: Any, lam: float = 0.1) -> Any:
    """Least squares with an L2 penalty written with norm."""
    r = np.dot(x, w) - y
    return np.mean(r ** 2) + lam * np.linalg.norm(w) ** 2


def cnn(images: Any, w1: Any, w2: Any, conv2d: Callable[..., Any],
        max_pool2d: Callable[..., Any]) -> Any:
    """conv -> tanh -> max-pool -> linear -> mean squared output."""
    h = np.tanh(conv2d(images, w1, padding=1))
    h = max_pool2d(h, 2)
    flat = np.reshape(h, (h.shape[0], -1))
    return np.mean(np.dot(flat, w2) ** 2)


# --- NumPy references for the nn ops (loops, independent of the plugin) -----------------
def _np_conv2d(x: Any, w: Any, padding: int = 0) -> Any:
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, hh, ww = x.shape
    o, _, kh, kw = w.shape
    out = np.zeros((n, o, hh - kh + 1, ww - kw + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = np.einsum("nchw,ochw->no", x[:, :, i:i + kh, j:j + kw], w)
    return out


def _np_max_pool2d(x: Any, k: int) -> Any:
    n, c, hh, ww = x.shape
    return x[:, :, :hh // k * k, :ww // k * k].reshape(n, c, hh // k, k, ww // k, k).max(
        axis=(3, 5))


# --- the checks -----------------------------------------------------------------------
def _check(fn: Callable[..., Any], values: list[Any], wrt: list[int],
           rtol: float = 1e-6) -> None:
    with ad.Graph():
        nodes = [ad.Variable(v.copy(), name=f"v{k}") if k in wrt else v
                 for k, v in enumerate(values)]
        out = fn(*nodes)
    assert isinstance(out, ad.Node), f"the NumPy code built a {type(out).__name__}"
    np.testing.assert_allclose(ad.evaluate(out), fn(*values), rtol=1e-10)
    grads = ad.grad(out, [nodes[k] for k in wrt])

    def moved(*xs: Any) -> Any:
        vals = list(values)
        for k, x in zip(wrt, xs, strict=True):
            vals[k] = x
        return fn(*vals)

    want = numeric_grads(moved, [values[k] for k in wrt])
    for k, g, w in zip(wrt, grads, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-8, err_msg=f"input {k}")


def test_gaussian_log_likelihood() -> None:
    a = RNG.standard_normal((3, 3))
    cov = a @ a.T + 3 * np.eye(3)
    _check(gaussian_nll, [RNG.standard_normal(3), RNG.standard_normal(3), cov], [1, 2])


def test_attention_block() -> None:
    q, k, v = (RNG.standard_normal((4, 3)) for _ in range(3))
    _check(attention, [q, k, v], [0, 1, 2])


def test_ridge_regression_with_norm() -> None:
    x, y = RNG.standard_normal((8, 3)), RNG.standard_normal(8)
    _check(ridge, [RNG.standard_normal(3), x, y], [0])


def test_small_cnn_forward() -> None:
    images = RNG.standard_normal((2, 1, 6, 6))
    w1 = RNG.standard_normal((2, 1, 3, 3)) * 0.5
    w2 = RNG.standard_normal((2 * 3 * 3, 2)) * 0.5

    def on_nodes(im: Any, a: Any, b: Any) -> Any:
        return cnn(im, a, b, ad.ops.conv2d, ad.ops.max_pool2d)

    def on_numpy(im: Any, a: Any, b: Any) -> Any:
        return cnn(im, a, b, _np_conv2d, _np_max_pool2d)

    values = [images, w1, w2]
    with ad.Graph():
        nodes: list[Any] = [images, ad.Variable(w1.copy(), name="w1"),
                            ad.Variable(w2.copy(), name="w2")]
        out = on_nodes(*nodes)
    np.testing.assert_allclose(ad.evaluate(out), on_numpy(*values), rtol=1e-10)
    grads = ad.grad(out, nodes[1:])
    want = numeric_grads(lambda a, b: on_numpy(images, a, b), [w1, w2])
    for g, w in zip(grads, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-8)
