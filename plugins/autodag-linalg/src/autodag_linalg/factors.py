"""numpy.linalg's several-output decompositions on nodes: eigh, svd, qr.

An op has one output, so each factor is an op of its own (``linalg_svd_u``,
``linalg_svd_vh``, ``linalg_qr_q``, with ``linalg_eigh_vectors`` and ``linalg_qr``'s R
from :mod:`.decomp`), and the op named after the NumPy function stands for its
invariant part (``linalg_eigh``: the eigenvalues, ``linalg_svd``: the singular values)
while ``numpy.linalg.<name>(node)`` returns NumPy's named tuple of factor nodes. The
factors of one tuple come from the same LAPACK call on the same input, so their signs
agree (``U @ diag(S) @ Vh`` is the input); each op's rule reads the other factors
through ops called with the same attributes, so they agree there too.

Gradients follow JAX's conventions. Singular vectors need distinct nonzero singular
values (at a repeated one the gradient is inf or NaN); with ``full_matrices=True`` the
completed bases of a non-square input are arbitrary, so U and Vh then have no gradient
(a ``GradientError``; the reduced factors, ``full_matrices=False``, have one), as in
JAX. ``hermitian=True`` gives NumPy's factors of a symmetric input (through its eigh:
other signs), with the same rules. Q and R need a full-rank input with at least as many
rows as columns (and, for ``mode='complete'``'s Q, a square one). Every op runs on any
backend (``array_api=True``, see :mod:`._dispatch`); another library's LAPACK may pick
other signs for the vectors (torch's does for wide matrices), and the standard's svd has
no ``hermitian``: there it is ignored.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from autodag import GradientError, OpDef, Sample

from ._dispatch import linalg_apply
from ._einsum import shape_of
from .decomp import EIGVALSH, SVDVALS, eigh_samples, qr_reduced, svdvals_samples, svdvals_vjp
from .results import EighResult, SVDResult
from .solvers import mT

__all__ = ["EIGH", "QR_Q", "SVD", "SVD_U", "SVD_VH", "svd_backward"]

_Rng = np.random.Generator


def _ops() -> Any:
    import autodag

    return autodag.ops  # the op functions themselves, never a namespace's tuple


def _svd_factor(a: Any, k: int, full_matrices: bool, hermitian: bool) -> Any:
    m, n = shape_of(a)[-2:]
    sizes = {"k": m if full_matrices else min(m, n), "l": n if full_matrices else min(m, n)}
    return linalg_apply(
        lambda x: np.linalg.svd(x, full_matrices=full_matrices, hermitian=hermitian)[k],
        "(i,j)->(i,k)" if k == 0 else "(i,j)->(l,j)", a, sizes=sizes,
        # The standard's svd has no hermitian flag: the same values, maybe other signs.
        xp_fn=lambda xp, x: xp.linalg.svd(x, full_matrices=full_matrices)[k])


def _reduced_only(op: str, a: Any, xp: Any, full_matrices: bool) -> tuple[int, int]:
    m, n = tuple(xp.shape(a))[-2:]
    if full_matrices and m != n:
        raise GradientError(
            f"{op}: no gradient with full_matrices=True for a non-square input ({m} x "
            f"{n}): the completed basis is arbitrary (as in JAX); use full_matrices=False")
    return m, n


def svd_backward(xp: Any, u: Any, s: Any, vh: Any, gu: Any, gvh: Any,
                 shape: tuple[int, int]) -> Any:
    """The gradient of the input of a reduced SVD ``u, s, vh`` for gradients ``gu`` of U
    and ``gvh`` of Vh (either may be None): Townsend's real-case formula."""
    m, n = shape
    s_row, s_col = xp.expand_dims(s, -2), xp.expand_dims(s, -1)  # s_j, s_i at [i, j]
    eye = xp.linalg_einsum_mask(s_col * s_row, subscripts="...ii")
    f = (1 - eye) / (s_row * s_row - s_col * s_col + eye)  # 1 / (s_j^2 - s_i^2), i != j
    inner: Any = 0
    outer: Any = 0
    if gu is not None:
        ug = xp.matmul(mT(xp, u), gu)
        inner = f * (ug - mT(xp, ug)) * s_row
        if m > n:  # the part of gu outside U's span
            outer = xp.matmul((gu - xp.matmul(u, ug)) / s_row, vh)
    if gvh is not None:
        vg = xp.matmul(vh, mT(xp, gvh))
        inner = inner + s_col * (f * (vg - mT(xp, vg)))
        if n > m:
            rest = gvh - xp.matmul(xp.matmul(gvh, mT(xp, vh)), vh)
            outer = outer + xp.matmul(u, rest / s_col)
    return xp.matmul(xp.matmul(u, inner), vh) + outer


def _svd_u_vjp(xp: Any, g: Any, out: Any, a: Any, full_matrices: bool,
               hermitian: bool) -> Any:
    shape = _reduced_only("linalg_svd_u", a, xp, full_matrices)
    s = xp.linalg_svdvals(a)
    vh = xp.linalg_svd_vh(a, full_matrices=full_matrices, hermitian=hermitian)
    return svd_backward(xp, out, s, vh, g, None, shape)


def _svd_vh_vjp(xp: Any, g: Any, out: Any, a: Any, full_matrices: bool,
                hermitian: bool) -> Any:
    shape = _reduced_only("linalg_svd_vh", a, xp, full_matrices)
    s = xp.linalg_svdvals(a)
    u = xp.linalg_svd_u(a, full_matrices=full_matrices, hermitian=hermitian)
    return svd_backward(xp, u, s, out, None, g, shape)


def _svd_s_vjp(xp: Any, g: Any, out: Any, a: Any, full_matrices: bool, compute_uv: bool,
               hermitian: bool) -> Any:
    return svdvals_vjp(xp, g, out, a)


def _numpy_svd(a: Any, full_matrices: bool = True, compute_uv: bool = True,
               hermitian: bool = False) -> Any:
    """numpy.linalg.svd(node): SVDResult(U, S, Vh) of nodes, or S without compute_uv."""
    ops = _ops()
    s = ops.linalg_svd(a, full_matrices=full_matrices, compute_uv=compute_uv,
                       hermitian=hermitian)
    if not compute_uv:
        return s
    flags = {"full_matrices": full_matrices, "hermitian": hermitian}
    return SVDResult(ops.linalg_svd_u(a, **flags), s, ops.linalg_svd_vh(a, **flags))


def _numpy_eigh(a: Any, UPLO: str = "L") -> EighResult:
    """numpy.linalg.eigh(node): EighResult(eigenvalues, eigenvectors) of nodes."""
    ops = _ops()
    return EighResult(ops.linalg_eigh(a, UPLO=UPLO), ops.linalg_eigh_vectors(a, UPLO=UPLO))


def _qr_q(a: Any, mode: str) -> Any:
    if mode not in ("reduced", "complete"):
        raise ValueError(f"linalg_qr_q: mode must be 'reduced' or 'complete' (the modes "
                         f"of numpy.linalg.qr that give Q), not {mode!r}")
    m, n = shape_of(a)[-2:]
    qr: Any = np.linalg.qr  # its stubs take a literal mode only
    return linalg_apply(lambda x: qr(x, mode=mode).Q, "(i,j)->(i,k)", a,
                        xp_fn=lambda xp, x: xp.linalg.qr(x, mode=mode).Q,
                        sizes={"k": m if mode == "complete" else min(m, n)})


def _qr_q_vjp(xp: Any, g: Any, out: Any, a: Any, mode: str) -> Any:
    qr_reduced("linalg_qr_q", xp, a, mode, square=True)
    r = xp.linalg_qr(a, mode="reduced")
    m = -xp.matmul(mT(xp, g), out)
    sym = xp.tril(m) + mT(xp, xp.tril(m, k=-1))  # the lower triangle mirrored
    x = g + xp.matmul(out, sym)
    return mT(xp, xp.linalg_solve(r, mT(xp, x)))  # X R^-T


def _svd_samples(rng: _Rng) -> list[Sample]:
    tall, wide, square = svdvals_samples(rng)
    reduced = {"full_matrices": False}
    # The backend suites run the first two: where every LAPACK picks NumPy's signs (for
    # wide matrices torch's picks others: a valid SVD all the same).
    return [Sample(tall.inputs, reduced), square, Sample(wide.inputs, reduced),
            Sample(square.inputs, reduced)]


def _qr_q_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((3, 2)) + np.eye(3, 2) * 2.0,)),
            Sample((r((2, 3, 3)) + np.eye(3) * 2.0,), {"mode": "complete"})]


_SVD_FLAGS: Final = {"full_matrices": True, "hermitian": False}

SVD_U: Final = OpDef(
    name="linalg_svd_u", arity=1, attributes=_SVD_FLAGS,
    forward=lambda a, full_matrices, hermitian: _svd_factor(a, 0, full_matrices, hermitian),
    backward=(_svd_u_vjp,), input_names=("a",), array_api=True, samples=_svd_samples,
    doc="U of numpy.linalg.svd (signs as LAPACK picks them); gradients need distinct "
        "nonzero singular values, and full_matrices=False unless the input is square.",
)
SVD_VH: Final = OpDef(
    name="linalg_svd_vh", arity=1, attributes=_SVD_FLAGS,
    forward=lambda a, full_matrices, hermitian: _svd_factor(a, 2, full_matrices, hermitian),
    backward=(_svd_vh_vjp,), input_names=("a",), array_api=True, samples=_svd_samples,
    doc="Vh of numpy.linalg.svd (signs agreeing with linalg_svd_u's); gradients as "
        "linalg_svd_u's.",
)
SVD: Final = OpDef(
    name="linalg_svd", arity=1,
    attributes={"full_matrices": True, "compute_uv": True, "hermitian": False},
    forward=lambda a, full_matrices, compute_uv, hermitian: SVDVALS.forward(a),
    backward=(_svd_s_vjp,), input_names=("a",), array_api=True, samples=svdvals_samples,
    numpy_function=_numpy_svd,
    doc="The singular values S; numpy.linalg.svd on a node gives NumPy's (U, S, Vh) "
        "(linalg_svd_u, this, linalg_svd_vh), or S alone with compute_uv=False.",
)
EIGH: Final = OpDef(
    name="linalg_eigh", arity=1, attributes={"UPLO": "L"}, forward=EIGVALSH.forward,
    backward=EIGVALSH.backward, input_names=("a",), array_api=True, samples=eigh_samples,
    numpy_function=_numpy_eigh,
    doc="The eigenvalues of (a + a.T) / 2; numpy.linalg.eigh on a node gives NumPy's "
        "(eigenvalues, eigenvectors) (this and linalg_eigh_vectors).",
)
QR_Q: Final = OpDef(
    name="linalg_qr_q", arity=1, attributes={"mode": "reduced"}, forward=_qr_q,
    backward=(_qr_q_vjp,), input_names=("a",), array_api=True, samples=_qr_q_samples,
    doc="Q of numpy.linalg.qr (mode 'reduced' or 'complete'); gradients for full-rank "
        "inputs with rows >= columns (square ones for 'complete').",
)
