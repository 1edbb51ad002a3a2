"""Decompositions: cholesky, eigvalsh (with the eigenvectors its rule needs), svdvals,
qr's R.

As JAX does, cholesky and the symmetric eigensolvers read the symmetrized input
``(a + a.T) / 2`` (NumPy reads one triangle only): the same values for a symmetric
input, and a gradient that is symmetric, perturbing both triangles alike.

Eigenvalue gradients ``V diag(g) V.T`` hold everywhere the eigenvalues are distinct
(at a repeated eigenvalue they depend on the eigenvectors NumPy picks, as in JAX and
autograd); eigenvectors' gradients need distinct eigenvalues (at a repeated one they
are inf or NaN). Singular values' gradients ``U diag(g) V.T`` need them distinct and
nonzero. qr's R has gradients for full-rank inputs with at least as many rows as
columns. Every op runs on any backend (``array_api=True``, see :mod:`._dispatch`).
:mod:`.factors` has the other factors (U, Vh, Q) and what
``numpy.linalg.eigh``/``svd``/``qr`` return on nodes.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from autodag import GradientError, OpDef, Sample
from autodag.backend import namespace_of

from ._dispatch import linalg_apply, linalg_call
from ._einsum import any_foreign, shape_of
from .results import QRResult
from .solvers import mT

__all__ = ["CHOLESKY", "EIGH_VECTORS", "EIGVALSH", "QR", "SVDVALS", "eigh_samples",
           "qr_reduced", "svdvals_samples", "svdvals_vjp"]

_Rng = np.random.Generator


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
    return linalg_call("eigvalsh", _sym(a))


def _eigh_vectors(a: Any, UPLO: str) -> Any:
    return linalg_apply(lambda x: np.linalg.eigh(x).eigenvectors, "(i,j)->(i,j)", _sym(a),
                        xp_fn=lambda xp, x: xp.linalg.eigh(x).eigenvectors)


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
    m, n = shape_of(x)[-2:]
    return linalg_apply(lambda v: np.linalg.svd(v, compute_uv=False), "(i,j)->(k)", x,
                        xp_fn=lambda xp, v: xp.linalg.svdvals(v), sizes={"k": min(m, n)})


def svdvals_vjp(xp: Any, g: Any, out: Any, x: Any) -> Any:
    """U diag(g) V.T for singular values ``out`` of ``x`` (through the Gram matrix)."""
    m, n = tuple(xp.shape(x))[-2:]
    tall = m >= n
    gram = xp.matmul(mT(xp, x), x) if tall else xp.matmul(x, mT(xp, x))
    # The Gram matrix's eigenvectors are the right (left) singular vectors, ascending.
    vecs = xp.flip(xp.linalg_eigh_vectors(gram), axis=-1)  # torch has no negative steps
    spread = xp.einsum([vecs, g / out, vecs], subscripts="...ij,...j,...kj->...ik")
    return xp.matmul(x, spread) if tall else xp.matmul(spread, x)


_QR_MODES: Final = ("reduced", "complete", "r")


def qr_reduced(op: str, xp: Any, a: Any, mode: str, square: bool) -> int:
    """The number of columns of ``a`` once checked that its QR has a gradient."""
    m, n = tuple(xp.shape(a))[-2:]
    if m < n or (square and mode == "complete" and m != n):
        need = "a square input" if m >= n else "at least as many rows as columns"
        raise GradientError(
            f"{op}: no gradient of mode={mode!r} for a {m} x {n} input: it needs {need} "
            "(as in JAX)")
    return int(n)


def _qr(a: Any, mode: str) -> Any:
    if mode not in _QR_MODES:
        raise ValueError(f"linalg_qr: mode must be one of {_QR_MODES} (R of "
                         f"numpy.linalg.qr in that mode), not {mode!r}")
    full = "complete" if mode == "complete" else "reduced"
    m, n = shape_of(a)[-2:]
    qr: Any = np.linalg.qr  # its stubs take a literal mode only
    return linalg_apply(lambda x: qr(x, mode=full).R, "(i,j)->(k,j)", a,
                        xp_fn=lambda xp, x: xp.linalg.qr(x, mode=full).R,
                        sizes={"k": m if full == "complete" else min(m, n)})


def _qr_vjp(xp: Any, g: Any, out: Any, a: Any, mode: str) -> Any:
    n = qr_reduced("linalg_qr", xp, a, mode, square=False)
    if mode == "complete":  # R's rows below the n-th are zeros whatever a is
        rows = (Ellipsis, slice(None, n), slice(None))
        g, out = xp.getitem(g, rows), xp.getitem(out, rows)
    q = mT(xp, xp.linalg_solve(mT(xp, out), mT(xp, a)))  # Q = A R^-1
    x = xp.matmul(g, mT(xp, out))
    x = xp.triu(x) + xp.tril(mT(xp, x), k=-1)
    return mT(xp, xp.linalg_solve(out, mT(xp, xp.matmul(q, x))))  # Q X R^-T


def _numpy_qr(a: Any, mode: str = "reduced") -> Any:
    """numpy.linalg.qr(node): QRResult(Q, R) of nodes, or R alone for mode='r'."""
    import autodag

    if mode not in _QR_MODES:
        raise ValueError(f"numpy.linalg.qr on a node: mode must be one of {_QR_MODES}, "
                         f"not {mode!r} ('raw' gives LAPACK's reflectors, not factors)")
    ops: Any = autodag.ops  # the op functions themselves, never a namespace's tuple
    r = ops.linalg_qr(a, mode=mode)
    return r if mode == "r" else QRResult(ops.linalg_qr_q(a, mode=mode), r)


def _spd(rng: _Rng, *shape: int) -> Any:
    """Symmetric positive-definite matrices with distinct eigenvalues."""
    n = shape[-1]
    b = rng.standard_normal(shape)
    return b @ np.swapaxes(b, -1, -2) + n * np.eye(n) + np.diag(np.arange(n) * 0.7)


def _cholesky_samples(rng: _Rng) -> list[Sample]:
    return [Sample((_spd(rng, 3, 3),)), Sample((_spd(rng, 2, 2, 2),)),
            Sample((_spd(rng, 3, 3),), {"upper": True})]


def eigh_samples(rng: _Rng) -> list[Sample]:
    """Symmetric matrices with distinct eigenvalues."""
    def sym(*shape: int) -> Any:
        b = rng.standard_normal(shape)
        return b + np.swapaxes(b, -1, -2) + np.diag(np.arange(shape[-1]) * 1.5)

    return [Sample((sym(3, 3),)), Sample((sym(2, 2, 2),))]


def svdvals_samples(rng: _Rng) -> list[Sample]:
    """Tall, wide and square matrices with distinct nonzero singular values."""
    r = rng.standard_normal
    return [Sample((r((3, 2)) + np.eye(3, 2) * np.array([2.0, 1.0]),)),
            Sample((r((2, 2, 3)) + np.eye(2, 3) * np.array([2.0, 1.0, 0.0]),)),
            Sample((r((3, 3)) + np.diag([3.0, 1.5, 0.5]),))]


def _qr_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((3, 2)) + np.eye(3, 2) * 2.0,), {"mode": "r"}),
            Sample((r((2, 3, 3)) + np.eye(3) * 2.0,)),
            Sample((r((3, 2)) + np.eye(3, 2) * 2.0,), {"mode": "complete"})]


QR: Final = OpDef(
    name="linalg_qr", arity=1, attributes={"mode": "reduced"}, forward=_qr,
    backward=(_qr_vjp,), input_names=("a",), array_api=True, samples=_qr_samples,
    numpy_function=_numpy_qr,
    doc="R of numpy.linalg.qr in that mode ('reduced', 'complete', 'r'); on a node "
        "numpy.linalg.qr gives (Q, R) (linalg_qr_q, this); gradients for full-rank "
        "inputs with rows >= columns.",
)
CHOLESKY: Final = OpDef(
    name="linalg_cholesky", arity=1, attributes={"upper": False}, forward=_cholesky,
    backward=(_cholesky_vjp,), input_names=("a",), array_api=True, samples=_cholesky_samples,
    doc="Cholesky factor of (a + a.T) / 2, as numpy.linalg.cholesky (lower, or upper "
        "with upper=True; NaN where not positive-definite).",
)
EIGVALSH: Final = OpDef(
    name="linalg_eigvalsh", arity=1, attributes={"UPLO": "L"}, forward=_eigvalsh,
    backward=(_eigvalsh_vjp,), input_names=("a",), array_api=True, samples=eigh_samples,
    doc="Eigenvalues (ascending) of (a + a.T) / 2, as numpy.linalg.eigvalsh (UPLO does "
        "not matter: both triangles are read); gradient V diag(g) V.T.",
)
EIGH_VECTORS: Final = OpDef(
    name="linalg_eigh_vectors", arity=1, attributes={"UPLO": "L"}, forward=_eigh_vectors,
    backward=(_eigh_vectors_vjp,), input_names=("a",), array_api=True, samples=eigh_samples,
    doc="The eigenvectors numpy.linalg.eigh gives for (a + a.T) / 2 (columns, signs as "
        "LAPACK picks them); gradients need distinct eigenvalues.",
)
SVDVALS: Final = OpDef(
    name="linalg_svdvals", arity=1, forward=_svdvals, backward=(svdvals_vjp,),
    input_names=("x",), array_api=True, samples=svdvals_samples,
    doc="Singular values (descending), as numpy.linalg.svdvals; gradient U diag(g) V.T "
        "where they are distinct and nonzero.",
)
