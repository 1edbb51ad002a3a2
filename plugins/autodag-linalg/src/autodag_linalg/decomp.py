"""Decompositions: cholesky, eigvalsh (with the eigenvectors its rule needs), svdvals,
qr's R.

As JAX does, cholesky and the symmetric eigensolvers read the symmetrized input
``(a + a.T) / 2`` (NumPy reads one triangle only): the same values for a symmetric
input, and a gradient that is symmetric, perturbing both triangles alike.

Eigenvalue gradients ``V diag(g) V.T`` hold everywhere the eigenvalues are distinct
(at a repeated eigenvalue they depend on the eigenvectors NumPy picks, as in JAX and
autograd); eigenvectors' gradients need distinct eigenvalues (at a repeated one they
are inf or NaN). Singular values' gradients ``U diag(g) V.T`` need them distinct and
nonzero. qr's R (``mode='r'``: one output) has gradients for full-rank inputs with at
least as many rows as columns. NumPy-only (``array_api=False``): Dask's linalg has no
eigvalsh, and its qr takes only 2-D arrays chunked along the rows.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from autodag import OpDef, Sample
from autodag.backend import namespace_of

from ._einsum import any_foreign
from .solvers import linalg_call, mT

__all__ = ["CHOLESKY", "EIGH_VECTORS", "EIGVALSH", "QR", "SVDVALS", "svdvals_vjp"]

_Rng = np.random.Generator
_FLIP: Final = (Ellipsis, slice(None, None, -1))


def _sym(a: Any) -> Any:
    if any_foreign((a,)):
        xp = namespace_of(a)
        return (a + xp.matrix_transpose(a)) / 2
    return (a + np.swapaxes(a, -1, -2)) / 2


def _cholesky(a: Any, upper: bool) -> Any:
    low = linalg_call("cholesky", _sym(a))
    if not upper:
        return low
    return namespace_of(low).matrix_transpose(low) if any_foreign((low,)) else mT(np, low)


def _cholesky_vjp(xp: Any, g: Any, out: Any, a: Any, upper: bool) -> Any:
    low, gl = (mT(xp, out), mT(xp, g)) if upper else (out, g)
    x = xp.matmul(mT(xp, low), gl)
    phi = 0.5 * (xp.tril(x) + xp.tril(x, k=-1))  # the lower triangle, half its diagonal
    lt = mT(xp, low)
    y = xp.linalg_solve(lt, phi)
    s = mT(xp, xp.linalg_solve(lt, mT(xp, y)))  # L^-T phi L^-1
    return 0.5 * (s + mT(xp, s))


def _eigvalsh(a: Any, UPLO: str) -> Any:
    return linalg_call("eigvalsh", _sym(a), core=1)


def _eigh_vectors(a: Any, UPLO: str) -> Any:
    if any_foreign((a,)):
        return namespace_of(a).linalg.eigh(_sym(a)).eigenvectors
    return np.linalg.eigh(_sym(a)).eigenvectors


def _eigvalsh_vjp(xp: Any, g: Any, out: Any, a: Any, UPLO: str) -> Any:
    v = xp.linalg_eigh_vectors(a, UPLO=UPLO)
    return xp.einsum([v, g, v], subscripts="...ij,...j,...kj->...ik")


def _eigh_vectors_vjp(xp: Any, g: Any, out: Any, a: Any, UPLO: str) -> Any:
    w = xp.linalg_eigvalsh(a, UPLO=UPLO)
    eye = xp.linalg_einsum_mask(a, subscripts="...ii")
    gaps = xp.expand_dims(w, -2) - xp.expand_dims(w, -1)  # w_j - w_i at [i, j]
    f = (1 - eye) / (gaps + eye)
    inner = f * xp.matmul(mT(xp, out), g)
    ga = xp.matmul(xp.matmul(out, inner), mT(xp, out))
    return 0.5 * (ga + mT(xp, ga))


def _svdvals(x: Any) -> Any:
    if any_foreign((x,)):
        return namespace_of(x).linalg.svdvals(x)
    return np.linalg.svd(x, compute_uv=False)


def svdvals_vjp(xp: Any, g: Any, out: Any, x: Any) -> Any:
    """U diag(g) V.T for singular values ``out`` of ``x`` (through the Gram matrix)."""
    m, n = tuple(xp.shape(x))[-2:]
    tall = m >= n
    gram = xp.matmul(mT(xp, x), x) if tall else xp.matmul(x, mT(xp, x))
    # The Gram matrix's eigenvectors are the right (left) singular vectors, ascending.
    vecs = xp.getitem(xp.linalg_eigh_vectors(gram), _FLIP)
    spread = xp.einsum([vecs, g / out, vecs], subscripts="...ij,...j,...kj->...ik")
    return xp.matmul(x, spread) if tall else xp.matmul(spread, x)


def _qr(a: Any, mode: str) -> Any:
    if mode != "r":
        raise ValueError(f"linalg_qr gives one output, R: call it with mode='r', not "
                         f"{mode!r} (numpy.linalg.qr's other modes give two)")
    if any_foreign((a,)):
        return namespace_of(a).linalg.qr(a, mode="reduced").R
    return np.linalg.qr(a, mode="r")


def _qr_vjp(xp: Any, g: Any, out: Any, a: Any, mode: str) -> Any:
    m, n = tuple(xp.shape(a))[-2:]
    if m < n:
        raise ValueError(f"linalg_qr: no gradient for a wide input ({m} x {n}): R's "
                         "gradient needs at least as many rows as columns")
    q = mT(xp, xp.linalg_solve(mT(xp, out), mT(xp, a)))  # Q = A R^-1
    x = xp.matmul(g, mT(xp, out))
    x = xp.triu(x) + xp.tril(mT(xp, x), k=-1)
    return mT(xp, xp.linalg_solve(out, mT(xp, xp.matmul(q, x))))  # Q X R^-T


def _spd(rng: _Rng, *shape: int) -> Any:
    """Symmetric positive-definite matrices with distinct eigenvalues."""
    n = shape[-1]
    b = rng.standard_normal(shape)
    return b @ np.swapaxes(b, -1, -2) + n * np.eye(n) + np.diag(np.arange(n) * 0.7)


def _cholesky_samples(rng: _Rng) -> list[Sample]:
    return [Sample((_spd(rng, 3, 3),)), Sample((_spd(rng, 2, 2, 2),)),
            Sample((_spd(rng, 3, 3),), {"upper": True})]


def _eigh_samples(rng: _Rng) -> list[Sample]:
    def sym(*shape: int) -> Any:
        b = rng.standard_normal(shape)
        return b + np.swapaxes(b, -1, -2) + np.diag(np.arange(shape[-1]) * 1.5)

    return [Sample((sym(3, 3),)), Sample((sym(2, 2, 2),))]


def _svdvals_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((3, 2)) + np.eye(3, 2) * np.array([2.0, 1.0]),)),
            Sample((r((2, 2, 3)) + np.eye(2, 3) * np.array([2.0, 1.0, 0.0]),)),
            Sample((r((3, 3)) + np.diag([3.0, 1.5, 0.5]),))]


def _qr_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((3, 2)) + np.eye(3, 2) * 2.0,), {"mode": "r"}),
            Sample((r((2, 3, 3)) + np.eye(3) * 2.0,), {"mode": "r"})]


QR: Final = OpDef(
    name="linalg_qr", arity=1, attributes={"mode": "reduced"}, forward=_qr,
    backward=(_qr_vjp,), input_names=("a",), samples=_qr_samples,
    doc="R of the QR decomposition, as numpy.linalg.qr(a, mode='r') (the one mode "
        "taken); gradients for full-rank inputs with rows >= columns.",
)
CHOLESKY: Final = OpDef(
    name="linalg_cholesky", arity=1, attributes={"upper": False}, forward=_cholesky,
    backward=(_cholesky_vjp,), input_names=("a",), samples=_cholesky_samples,
    doc="Cholesky factor of (a + a.T) / 2, as numpy.linalg.cholesky (lower, or upper "
        "with upper=True; NaN where not positive-definite).",
)
EIGVALSH: Final = OpDef(
    name="linalg_eigvalsh", arity=1, attributes={"UPLO": "L"}, forward=_eigvalsh,
    backward=(_eigvalsh_vjp,), input_names=("a",), samples=_eigh_samples,
    doc="Eigenvalues (ascending) of (a + a.T) / 2, as numpy.linalg.eigvalsh (UPLO does "
        "not matter: both triangles are read); gradient V diag(g) V.T.",
)
EIGH_VECTORS: Final = OpDef(
    name="linalg_eigh_vectors", arity=1, attributes={"UPLO": "L"}, forward=_eigh_vectors,
    backward=(_eigh_vectors_vjp,), input_names=("a",), samples=_eigh_samples,
    doc="The eigenvectors numpy.linalg.eigh gives for (a + a.T) / 2 (columns, signs as "
        "LAPACK picks them); gradients need distinct eigenvalues.",
)
SVDVALS: Final = OpDef(
    name="linalg_svdvals", arity=1, forward=_svdvals, backward=(svdvals_vjp,),
    input_names=("x",), samples=_svdvals_samples,
    doc="Singular values (descending), as numpy.linalg.svdvals; gradient U diag(g) V.T "
        "where they are distinct and nonzero.",
)
