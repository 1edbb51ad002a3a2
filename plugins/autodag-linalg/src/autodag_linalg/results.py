"""NumPy's named tuples of several-output numpy.linalg functions, holding nodes."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["EighResult", "QRResult", "SVDResult", "SlogdetResult"]


class EighResult(NamedTuple):
    """numpy.linalg.eigh's pair, as nodes."""

    eigenvalues: Any
    eigenvectors: Any


class SVDResult(NamedTuple):
    """numpy.linalg.svd's triple, as nodes."""

    U: Any
    S: Any
    Vh: Any


class QRResult(NamedTuple):
    """numpy.linalg.qr's pair, as nodes."""

    Q: Any
    R: Any


class SlogdetResult(NamedTuple):
    """numpy.linalg.slogdet's pair, as nodes."""

    sign: Any
    logabsdet: Any
