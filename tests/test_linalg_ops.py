"""autodag-linalg: every op checked, values against NumPy, gradients against central
differences, einsum's subscripts as NumPy reads them, NaN for singular matrices, and
the products on array-api-strict."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_strict
import numpy as np
import pytest
from autodag_linalg.plugin import OPS

import autodag as ad
from autodag.backend import BackendError
from autodag.testing import check_op
from tests.fd import numeric_grads

Array = np.ndarray[Any, Any]
# Untyped on purpose: autodag/ops.pyi lists this plugin's ops only once regenerated
# (python -m autodag.opstubs) with autodag-linalg among the first-party plugins.
ops: Any = ad.ops
RNG_SEED = 7


def _rng() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


def _spd(rng: np.random.Generator, *shape: int) -> Array:
    b = rng.standard_normal(shape)
    n = shape[-1]
    return b @ np.swapaxes(b, -1, -2) + n * np.eye(n) + np.diag(np.arange(n) * 0.7)


def _well(rng: np.random.Generator, *shape: int) -> Array:
    return rng.standard_normal(shape) * 0.3 + 2.0 * np.eye(shape[-1])


@pytest.mark.parametrize("name", [op.name for op in OPS])
def test_every_op_passes_check_op(name: str) -> None:
    assert ad.get_registry().get(name).plugin.distribution == "autodag-linalg"
    check_op(name)


def _value_and_grad(build: Callable[..., Any], *values: Array) -> tuple[Any, list[Any]]:
    with ad.Graph():
        xs = [ad.Variable(v) for v in values]
        y = build(*xs)
        out = ad.evaluate(y)
        grads = ad.grad(ops.sum(y * np.cos(np.arange(np.size(out)).reshape(np.shape(out)))),
                        xs)
    return out, list(grads)


def _check(build: Callable[..., Any], ref: Callable[..., Any], *values: Array) -> None:
    """The op's value equals NumPy's, its gradient central differences of NumPy's."""
    out, grads = _value_and_grad(build, *values)
    want = ref(*values)
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-12)
    weight = np.cos(np.arange(np.size(want)).reshape(np.shape(want)))
    fd = numeric_grads(lambda *a: ref(*a) * weight, values)
    for g, f in zip(grads, fd, strict=True):
        np.testing.assert_allclose(g, f, rtol=1e-5, atol=1e-6)


EINSUMS = [
    ("ij,jk", [(2, 3), (3, 4)]),
    ("ij,jk->", [(2, 3), (3, 4)]),
    ("ii->i", [(3, 3)]),
    ("iij", [(3, 3, 2)]),
    ("i...,...i->...", [(3, 2), (2, 3)]),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (4, 3, 2)]),
    ("bij,bjk,bkl->bil", [(2, 2, 3), (2, 3, 2), (2, 2, 2)]),
    ("Ab,bA", [(2, 3), (3, 2)]),
    ("i,j", [(2,), (3,)]),
    ("ij->", [(2, 3)]),
    ("...", [(2, 3)]),
    ("i i", [(3, 3)]),
]


@pytest.mark.parametrize(("subscripts", "shapes"), EINSUMS)
def test_einsum_values_and_gradients_as_numpy(subscripts: str,
                                              shapes: list[tuple[int, ...]]) -> None:
    rng = _rng()
    values = [rng.standard_normal(s) for s in shapes]
    _check(lambda *xs: ops.einsum(list(xs), subscripts=subscripts),
           lambda *vs: np.einsum(subscripts, *vs), *values)


def test_einsum_second_derivative_against_differences_of_the_first() -> None:
    rng = _rng()
    a = rng.standard_normal((3, 3))
    v = rng.standard_normal((3, 3))

    def grad_of(x: Array) -> Array:
        with ad.Graph():
            xv = ad.Variable(x)
            (g,) = ad.grad(ops.einsum([xv, xv, xv], subscripts="ij,jk,ki"), [xv])
        return np.asarray(g)

    with ad.Graph():
        x = ad.Variable(a)
        (g,) = ad.gradients(ops.einsum([x, x, x], subscripts="ij,jk,ki"), [x])
        (h,) = ad.gradients(g, [x], grad_ys=v)
        hv = ad.evaluate(h)
    want = numeric_grads(lambda x: grad_of(x) * v, [a], eps=1e-5)[0]
    np.testing.assert_allclose(hv, want, rtol=1e-5, atol=1e-6)


PRODUCTS = [
    ("dot", lambda a, b: ops.dot(a, b), np.dot, [(2, 3), (4, 3, 2)]),
    ("dot-vec", lambda a, b: ops.dot(a, b), np.dot, [(2, 3), (3,)]),
    ("inner", lambda a, b: ops.inner(a, b), np.inner, [(2, 3), (4, 3)]),
    ("outer", lambda a, b: ops.outer(a, b), np.outer, [(2, 2), (3,)]),
    ("vdot", lambda a, b: ops.vdot(a, b), np.vdot, [(2, 3), (3, 2)]),
    ("tensordot", lambda a, b: ops.tensordot(a, b, axes=([0, 2], [1, 0])),
     lambda a, b: np.tensordot(a, b, axes=([0, 2], [1, 0])), [(3, 2, 4), (4, 3)]),
    ("tensordot2", lambda a, b: ops.tensordot(a, b), np.tensordot, [(2, 3, 4), (3, 4)]),
    ("kron", lambda a, b: ops.kron(a, b), np.kron, [(3,), (2, 2)]),
    ("trace", lambda a: ops.trace(a, 1, 0, 2),
     lambda a: np.trace(a, 1, 0, 2), [(3, 2, 4)]),
    ("diagonal", lambda a: ops.diagonal(a, offset=-1, axis1=2, axis2=0),
     lambda a: np.diagonal(a, -1, 2, 0), [(3, 2, 4)]),
    ("diag1", lambda v: ops.diag(v, k=-2), lambda v: np.diag(v, -2), [(3,)]),
    ("diag2", lambda v: ops.diag(v, 1), lambda v: np.diag(v, 1), [(3, 4)]),
    ("triu", lambda m: ops.triu(m, k=-1), lambda m: np.triu(m, -1), [(2, 3, 4)]),
    ("tril", lambda m: ops.tril(m, 1), lambda m: np.tril(m, 1), [(4, 3)]),
]


@pytest.mark.parametrize(("build", "ref", "shapes"), [p[1:] for p in PRODUCTS],
                         ids=[p[0] for p in PRODUCTS])
def test_products_and_structure_as_numpy(build: Callable[..., Any], ref: Callable[..., Any],
                                         shapes: list[tuple[int, ...]]) -> None:
    rng = _rng()
    _check(build, ref, *(rng.standard_normal(s) for s in shapes))


def _sym(a: Array) -> Array:
    return (a + np.swapaxes(a, -1, -2)) / 2


LINALG: list[tuple[str, Callable[..., Any], Callable[..., Any],
                   Callable[[np.random.Generator], list[Array]]]] = [
    ("inv", lambda a: ops.linalg_inv(a), np.linalg.inv, lambda r: [_well(r, 2, 3, 3)]),
    ("solve-vec", lambda a, b: ops.linalg_solve(a, b), np.linalg.solve,
     lambda r: [_well(r, 2, 3, 3), r.standard_normal(3)]),
    ("solve-mat", lambda a, b: ops.linalg_solve(a, b), np.linalg.solve,
     lambda r: [_well(r, 3, 3), r.standard_normal((2, 3, 2))]),
    ("det", lambda a: ops.linalg_det(a), np.linalg.det, lambda r: [_well(r, 2, 3, 3)]),
    ("slogdet", lambda a: ops.linalg_slogdet(a), lambda a: np.linalg.slogdet(a)[1],
     lambda r: [-_well(r, 3, 3)]),
    ("matrix_power", lambda a: ops.linalg_matrix_power(a, 3),
     lambda a: np.linalg.matrix_power(a, 3), lambda r: [r.standard_normal((3, 3))]),
    ("matrix_power-neg", lambda a: ops.linalg_matrix_power(a, n=-2),
     lambda a: np.linalg.matrix_power(a, -2), lambda r: [_well(r, 2, 2, 2)]),
    ("pinv", lambda a: ops.linalg_pinv(a), np.linalg.pinv,
     lambda r: [r.standard_normal((2, 4)) + np.eye(2, 4)]),
    ("cholesky", lambda a: ops.linalg_cholesky(a),
     lambda a: np.linalg.cholesky(_sym(a)), lambda r: [_spd(r, 2, 3, 3)]),
    ("cholesky-upper", lambda a: ops.linalg_cholesky(a, upper=True),
     lambda a: np.linalg.cholesky(_sym(a), upper=True), lambda r: [_spd(r, 3, 3)]),
    ("eigvalsh", lambda a: ops.linalg_eigvalsh(a),
     lambda a: np.linalg.eigvalsh(_sym(a)), lambda r: [_spd(r, 2, 3, 3)]),
    ("svdvals", lambda a: ops.linalg_svdvals(a), np.linalg.svdvals,
     lambda r: [r.standard_normal((2, 4, 3)) + np.eye(4, 3) * [3.0, 2.0, 1.0]]),
    ("qr", lambda a: ops.linalg_qr(a, mode="r"), lambda a: np.linalg.qr(a, mode="r"),
     lambda r: [r.standard_normal((2, 4, 3)) + np.eye(4, 3) * 2.0]),
    ("svdvals-wide", lambda a: ops.linalg_svdvals(a), np.linalg.svdvals,
     lambda r: [r.standard_normal((2, 3)) + np.eye(2, 3) * 2.0]),
]


@pytest.mark.parametrize(("build", "ref", "draw"), [p[1:] for p in LINALG],
                         ids=[p[0] for p in LINALG])
def test_linalg_as_numpy(build: Callable[..., Any], ref: Callable[..., Any],
                         draw: Callable[[np.random.Generator], list[Array]]) -> None:
    _check(build, ref, *draw(_rng()))


NORMS: list[dict[str, Any]] = [
    {}, {"ord": "fro"}, {"ord": "nuc"}, {"ord": 2}, {"ord": -2}, {"ord": 1},
    {"ord": -1}, {"ord": math.inf}, {"ord": -math.inf}, {"axis": 0}, {"axis": 1, "ord": 1},
    {"axis": -1, "ord": 3, "keepdims": True}, {"axis": 0, "ord": math.inf},
    {"axis": (1, 0), "ord": "nuc", "keepdims": True}, {"axis": 1, "ord": 0.5},
]


@pytest.mark.parametrize("kwargs", NORMS, ids=[str(k) for k in NORMS])
def test_norm_as_numpy(kwargs: dict[str, Any]) -> None:
    x = _rng().standard_normal((4, 3)) + np.eye(4, 3) * [3.0, 2.0, 1.0]
    _check(lambda a: ops.linalg_norm(a, **kwargs),
           lambda a: np.linalg.norm(a, **kwargs), x)


def test_singular_matrices_give_nan_per_matrix() -> None:
    stack = np.stack([np.ones((2, 2)), np.eye(2) * 2.0])
    with ad.Graph():
        x = ad.Variable(stack)
        got = ad.evaluate(ops.linalg_inv(x))
        chol = ad.evaluate(ops.linalg_cholesky(-x))
    assert np.isnan(got[0]).all()
    np.testing.assert_allclose(got[1], np.eye(2) / 2.0)
    assert np.isnan(chol).all()


def test_slogdet_sign_is_numpys_sign() -> None:
    a = np.stack([-_well(_rng(), 3, 3), np.ones((3, 3))])
    with ad.Graph():
        x = ad.Variable(a)
        sign = ad.evaluate(ops.linalg_slogdet_sign(x))
        logabs = ad.evaluate(ops.linalg_slogdet(x))
    want_sign, want_log = np.linalg.slogdet(a)
    np.testing.assert_array_equal(sign, want_sign)
    np.testing.assert_allclose(logabs, want_log)


def test_numpy_and_linalg_namespace_calls_build_the_ops() -> None:
    a = _well(_rng(), 3, 3)
    with ad.Graph():
        x: Any = ad.Variable(a)  # NumPy's stubs do not know nodes take its functions
        np.testing.assert_allclose(ad.evaluate(ops.linalg.inv(x)), np.linalg.inv(a))
        np.testing.assert_allclose(ad.evaluate(np.linalg.det(x)), np.linalg.det(a))
        np.testing.assert_allclose(ad.evaluate(np.trace(x)), np.trace(a))
        np.testing.assert_allclose(ad.evaluate(np.dot(x, x)), a @ a)


def test_products_on_array_api_strict_match_numpy() -> None:
    rng = _rng()
    a, b = rng.standard_normal((2, 3, 3)), rng.standard_normal((3, 3))
    cases: list[tuple[Callable[..., Any], Callable[..., Any]]] = [
        (lambda x, y: ops.einsum([x, y], subscripts="...ii,jk->...jk"),
         lambda x, y: np.einsum("...ii,jk->...jk", x, y)),
        (lambda x, y: ops.dot(x, y), np.dot),
        (lambda x, y: ops.kron(x, y), np.kron),
        (lambda x, y: ops.trace(x, 1) + ops.diag(y, -1).sum(), lambda x, y:
         np.trace(x, 1) + np.diag(y, -1).sum()),
        (lambda x, y: ops.triu(x, 1) * ops.tril(y), lambda x, y:
         np.triu(x, 1) * np.tril(y)),
    ]
    for build, ref in cases:
        with ad.Graph():
            xs = [ad.Variable(array_api_strict.asarray(v)) for v in (a, b)]
            y = build(*xs)
            got = ad.evaluate(y)
            grads = ad.grad(ops.sum(y), xs)
        assert type(got).__module__.startswith("array_api_strict")  # never converted
        np.testing.assert_allclose(np.asarray(got), ref(a, b), rtol=1e-12)
        fd = numeric_grads(ref, [a, b])
        for g, f in zip(grads, fd, strict=True):
            np.testing.assert_allclose(np.asarray(g), f, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", NORMS[:2] + NORMS[5:13], ids=str)
def test_norm_on_array_api_strict_matches_numpy(kwargs: dict[str, Any]) -> None:
    x = _rng().standard_normal((4, 3))
    with ad.Graph():
        v = ad.Variable(array_api_strict.asarray(x))
        y = ops.linalg_norm(v, **kwargs)
        got = ad.evaluate(y)
        (g,) = ad.grad(ops.sum(y), [v])
    np.testing.assert_allclose(np.asarray(got), np.linalg.norm(x, **kwargs), rtol=1e-12)
    (fd,) = numeric_grads(lambda a: np.linalg.norm(a, **kwargs), [x])
    np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-5, atol=1e-6)


def test_qr_refuses_two_output_modes() -> None:
    with ad.Graph():
        x = ad.Variable(np.eye(3))
        with pytest.raises(ValueError, match="mode='r'"):
            ad.evaluate(ops.linalg_qr(x))


def test_linalg_ops_are_refused_on_other_backends() -> None:
    with ad.Graph():
        x = ad.Variable(array_api_strict.asarray(np.eye(2)))
        with pytest.raises(BackendError, match="linalg_inv"):
            ad.evaluate(ops.linalg_inv(x))


def test_einsum_refuses_bad_subscripts() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones((2, 3)))
        with pytest.raises(ValueError):
            ad.evaluate(ops.einsum([x], subscripts="ijk"))
