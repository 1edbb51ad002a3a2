"""The ``linalg`` plugin: products, einsum, diagonals and triangles, numpy.linalg.

Op names follow NumPy; those of ``numpy.linalg`` take a ``linalg_`` prefix
(``linalg_inv``), since op names are identifiers. Backward rules use only Python
operators and ``xp.<op>``, so every op differentiates again; the helpers they need
(``linalg_einsum_mask``, ``linalg_diag_selector``, ``linalg_tri_mask``) are ops too,
without gradients (they depend on shapes only).

Every op runs on any array-API backend (``array_api=True``): NumPy values take NumPy's
functions; for another library's arrays products and structure ops are an einsum
written with the standard's functions (:mod:`._einsum`), ``linalg_norm`` the standard's
vector_norm and matrix_norm, and the other ``numpy.linalg`` ops its linalg extension
(on Dask, NumPy's functions matrix by matrix inside its tasks, :mod:`._dispatch`).
numpy.linalg's several-output functions (eigh, svd, qr, slogdet) called on nodes give
NumPy's named tuples of nodes (:mod:`.factors`).
"""

from __future__ import annotations

from typing import Final

import autodag
from autodag import OpDef

from .decomp import CHOLESKY, EIGH_VECTORS, EIGVALSH, QR, SVDVALS
from .einsum import EINSUM, EINSUM_MASK
from .factors import EIGH, QR_Q, SVD, SVD_U, SVD_VH
from .norms import NORM
from .onnx_rules import autodag_onnx_converters as autodag_onnx_converters
from .products import DOT, INNER, KRON, OUTER, TENSORDOT, VDOT
from .solvers import DET, INV, MATRIX_POWER, PINV, SLOGDET, SLOGDET_SIGN, SOLVE
from .structure import DIAG, DIAG_SELECTOR, DIAGONAL, TRACE, TRI_MASK, TRIL, TRIU

__all__ = ["OPS", "autodag_register_ops"]

OPS: Final[tuple[OpDef, ...]] = (
    DOT,
    OUTER,
    INNER,
    VDOT,
    TENSORDOT,
    EINSUM,
    TRACE,
    DIAGONAL,
    DIAG,
    TRIU,
    TRIL,
    KRON,
    INV,
    SOLVE,
    DET,
    SLOGDET,
    SLOGDET_SIGN,
    NORM,
    MATRIX_POWER,
    PINV,
    CHOLESKY,
    EIGVALSH,
    EIGH_VECTORS,
    SVDVALS,
    QR,
    EIGH,
    SVD,
    SVD_U,
    SVD_VH,
    QR_Q,
    # Helpers that backward rules call through xp (no gradients: shapes only).
    EINSUM_MASK,
    DIAG_SELECTOR,
    TRI_MASK,
)


@autodag.hookimpl
def autodag_register_ops() -> list[OpDef]:
    """The ops of autodag-linalg."""
    return list(OPS)
