"""autodag-linalg: linear-algebra ops for autodag, found through the ``autodag`` entry point.

Products (dot, vdot, inner, outer, tensordot, einsum, kron), diagonals and triangles
(trace, diagonal, diag, triu, tril) and ``numpy.linalg`` functions, whose op names take a
``linalg_`` prefix (``linalg_inv`` is ``numpy.linalg.inv``). The ops are defined in
:mod:`autodag_linalg.plugin` (by concern: products, structure, solvers, decomp,
factors); :mod:`autodag_linalg.results` has the named tuples numpy.linalg's eigh, svd,
qr and slogdet give on nodes.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
