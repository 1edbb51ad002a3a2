"""autodag-linalg: every op checked, values against NumPy, gradients against central
differences, einsum's subscripts as NumPy reads them, NaN for singular matrices,
numpy.linalg's eigh, svd, qr and slogdet on nodes (NumPy's tuples), and the ops on
array-api-strict and Dask."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_strict
import numpy as np
import pytest
from autodag_linalg.plugin import OPS

import autodag as ad
from autodag.testing import check_op
from tests.fd import numeric_grads

Array = np.ndarray[Any, Any]
# Untyped on purpose: autodag/ops.pyi lists this plugin's ops only once regenerated
# (python -m autodag.opstubs) with autodag-linalg among the first-party plugins.
ops: Any = ad.ops
# numpy.linalg called on nodes as on arrays: its stubs take arrays only.
linalg: Any = np.linalg
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


def test_qr_refuses_modes_without_r() -> None:
    with ad.Graph():
        x = ad.Variable(np.eye(3))
        with pytest.raises(ValueError, match="'raw'"):
            ad.evaluate(ops.linalg_qr(x, mode="raw"))
        with pytest.raises(ValueError, match="'raw'"):
            linalg.qr(x, mode="raw")


def _weights(*shape: int) -> Any:
    return np.cos(np.arange(math.prod(shape)).reshape(shape) * 0.7 + 0.3)


def _on_nodes(f: Callable[..., Any], a: Array) -> tuple[float, Array]:
    """``f(node)`` evaluated, and its gradient."""
    with ad.Graph():
        x = ad.Variable(a)
        y = f(x)
        (g,) = ad.grad(y, [x])
        return float(ad.evaluate(y)), np.asarray(g)


def _against_numpy(f: Callable[..., Any], a: Array) -> None:
    """``f`` (NumPy calls only) on a node: value and gradient as on arrays."""
    value, grad = _on_nodes(f, a)
    np.testing.assert_allclose(value, f(a), rtol=1e-10)
    (fd,) = numeric_grads(f, [a])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)


def _eigh_loss(a: Any) -> Any:
    # eigh reads both triangles (as JAX does), NumPy the lower one: the same for a
    # symmetric input. Squares of the eigenvectors are free of their signs.
    w, v = linalg.eigh((a + np.swapaxes(a, -1, -2)) / 2)
    return np.sum(w * _weights(3)) + np.sum(v * v * _weights(3, 3))


def _svd_loss(full: bool) -> Callable[[Any], Any]:
    def loss(a: Any) -> Any:
        u, s, vh = linalg.svd(a, full_matrices=full)
        k = np.shape(s)[-1]
        back = np.matmul(u[..., :, :k] * np.expand_dims(s, -2), vh[..., :k, :])
        return (np.sum(back * _weights(*np.shape(a))) + np.sum(s * s)
                + np.sum(u * u * _weights(*np.shape(u))) + np.sum(vh * vh * _weights(
                    *np.shape(vh))))

    return loss


def _qr_loss(mode: str) -> Callable[[Any], Any]:
    def loss(a: Any) -> Any:
        q, r = linalg.qr(a, mode=mode)
        return np.sum(q * _weights(*np.shape(q))) + np.sum(r * _weights(*np.shape(r)))

    return loss


FACTORED: list[tuple[str, Callable[[Any], Any], Array]] = [
    ("eigh", _eigh_loss, _spd(_rng(), 3, 3)),
    ("svd-tall", _svd_loss(False), _rng().standard_normal((4, 3)) + np.eye(4, 3) * [3.0, 2, 1]),
    ("svd-wide", _svd_loss(False), _rng().standard_normal((2, 2, 3)) + np.eye(2, 3) * [2.0, 1, 0]),
    ("svd-square-full", _svd_loss(True), _well(_rng(), 3, 3) + np.diag([1.0, 0.0, -1.0])),
    ("qr-reduced", _qr_loss("reduced"), _rng().standard_normal((2, 4, 3)) + np.eye(4, 3) * 2),
    ("qr-complete-square", _qr_loss("complete"), _well(_rng(), 3, 3)),
]


@pytest.mark.parametrize(("loss", "a"), [c[1:] for c in FACTORED], ids=[c[0] for c in FACTORED])
def test_decompositions_on_nodes_differentiate(loss: Callable[[Any], Any], a: Array) -> None:
    _against_numpy(loss, a)


def test_decompositions_on_nodes_are_numpys_tuples() -> None:
    rng = _rng()
    a = rng.standard_normal((2, 4, 3))
    sym = _spd(rng, 3, 3)
    with ad.Graph():
        x, s = ad.Variable(a), ad.Variable(sym)
        got = {
            "eigh": linalg.eigh(s), "svd": linalg.svd(x),
            "svd-reduced": linalg.svd(x, full_matrices=False),
            "qr": linalg.qr(x), "qr-complete": linalg.qr(x, mode="complete"),
            "slogdet": linalg.slogdet(s),
        }
        values = {k: [ad.evaluate(n) for n in v] for k, v in got.items()}
        only_s = ad.evaluate(linalg.svd(x, compute_uv=False))
        only_r = ad.evaluate(linalg.qr(x, mode="r"))
    want: dict[str, Any] = {"eigh": np.linalg.eigh(sym), "svd": np.linalg.svd(a),
            "svd-reduced": np.linalg.svd(a, full_matrices=False), "qr": np.linalg.qr(a),
            "qr-complete": np.linalg.qr(a, mode="complete"), "slogdet": np.linalg.slogdet(sym)}
    for key, ref in want.items():
        assert got[key]._fields == ref._fields, key
        for v, w in zip(values[key], ref, strict=True):
            np.testing.assert_allclose(v, w, rtol=1e-10, atol=1e-12, err_msg=key)
    np.testing.assert_allclose(only_s, np.linalg.svd(a, compute_uv=False))
    np.testing.assert_allclose(only_r, np.linalg.qr(a, mode="r"))


def test_full_matrices_of_a_non_square_input_have_no_gradient() -> None:
    with ad.Graph():
        x = ad.Variable(np.eye(3, 2) + 0.1)
        u, _, vh = linalg.svd(x)
        q, _ = linalg.qr(x, mode="complete")
        for factor in (u, vh, q):
            with pytest.raises(ad.GradientError, match="3 x 2"):
                ad.grad(ops.sum(factor), [x])
        wide = ad.Variable(np.eye(2, 3) + 0.1)
        with pytest.raises(ad.GradientError, match="2 x 3"):
            ad.grad(ops.sum(ops.linalg_qr(wide)), [wide])


def _gaussian_loss(c: Any, y: Any, wt: Any) -> Any:
    """A sum over numpy.linalg's functions, written once for arrays and nodes."""
    c = (c + np.swapaxes(c, -1, -2)) / 2  # NumPy's eigh and cholesky read one triangle
    sign, logdet = linalg.slogdet(c)
    w, v = linalg.eigh(c)
    q, r = linalg.qr(c)
    u, s, vh = linalg.svd(c, full_matrices=False)
    return (np.sum(logdet * sign) + np.sum(linalg.solve(c, y) * y) + np.sum(linalg.inv(c))
            + np.sum(linalg.det(c)) + np.sum(w * w) + np.sum(v * v * wt)
            + np.sum(np.abs(np.diagonal(r, axis1=-2, axis2=-1))) + np.sum(q * q * wt)
            + np.sum(s) + np.sum(np.matmul(u * np.expand_dims(s, -2), vh) * wt)
            + np.sum(linalg.cholesky(c)) + np.sum(linalg.pinv(c))
            + np.sum(linalg.matrix_power(c, 2)))


# Dask builds and runs a task per op and matrix: seconds, so in make slow.
@pytest.mark.parametrize("backend", ["strict", pytest.param("dask", marks=pytest.mark.slow)])
def test_linalg_on_other_backends_matches_numpy(backend: str) -> None:
    rng = _rng()
    c, y = _spd(rng, 2, 3, 3), rng.standard_normal((2, 3, 2))
    if backend == "dask":
        da: Any = pytest.importorskip("dask.array")
        to: Callable[[Array], Any] = lambda v: da.from_array(v, chunks=1)  # noqa: E731
    else:
        to = array_api_strict.asarray
    with ad.Graph():
        xs = [ad.Variable(to(c)), ad.Variable(to(y))]
        loss = _gaussian_loss(xs[0], xs[1], to(_weights(3, 3)))
        got = ad.evaluate(loss)
        grads = ad.grad(loss, xs)
    assert type(got).__module__.startswith(("array_api_strict", "dask"))  # never converted
    np.testing.assert_allclose(np.asarray(got), _gaussian_loss(c, y, _weights(3, 3)),
                               rtol=1e-10)
    fd = numeric_grads(lambda a, b: _gaussian_loss(a, b, _weights(3, 3)), [c, y])
    for g, f in zip(grads, fd, strict=True):
        np.testing.assert_allclose(np.asarray(g), f, rtol=1e-5, atol=1e-6)


def test_einsum_refuses_bad_subscripts() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones((2, 3)))
        with pytest.raises(ValueError):
            ad.evaluate(ops.einsum([x], subscripts="ijk"))


def test_ops_linalg_namespace_gives_numpys_tuples() -> None:
    a = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 1.0]])
    x = ad.Variable(a)
    w, v = ad.ops.linalg.eigh(x)
    ref_w, ref_v = np.linalg.eigh(a)
    np.testing.assert_allclose(ad.evaluate(w), ref_w)
    np.testing.assert_allclose(np.abs(ad.evaluate(v)), np.abs(ref_v))
    u, s, vh = ad.ops.linalg.svd(x)
    np.testing.assert_allclose(ad.evaluate(u) * ad.evaluate(s) @ ad.evaluate(vh), a,
                               atol=1e-12)
    q, r = ad.ops.linalg.qr(x)
    np.testing.assert_allclose(ad.evaluate(q) @ ad.evaluate(r), a, atol=1e-12)
    assert isinstance(ad.ops.linalg.inv(x), ad.Operator)
