"""What the ops' forms for other array libraries share: which values are another
library's arrays, shapes read without converting, dtypes asked of the arrays.

NumPy arrays and Python numbers take each op's NumPy code (the fast path); these
helpers serve the form beside it, written against the values' own namespace
(``autodag.backend.namespace_of``), which never converts anything to NumPy.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from autodag.backend import is_array

__all__ = ["NUMPY", "PY_NUMBERS", "as_array", "float_dtype", "floated", "foreign", "index_array",
           "reshape", "shape_of", "size_of"]

PY_NUMBERS: Final = (bool, int, float, complex)
# The classes of NumPy's and Python's values: one set lookup finds the NumPy fast path
# (``is_array`` asks more, for the rest: subclasses, lists, other libraries' arrays).
NUMPY: Final = frozenset({np.ndarray, bool, int, float, complex, *np.sctypeDict.values()})


def foreign(x: Any) -> bool:
    """Whether ``x`` is an array of a library other than NumPy (ndarrays cost one test)."""
    return x.__class__ not in NUMPY and is_array(x)


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of an array of any library, or of Python data (through NumPy)."""
    s = getattr(x, "shape", None)
    return tuple(s) if s is not None else tuple(np.shape(x))


def size_of(x: Any) -> int:
    return math.prod(shape_of(x))


def float_dtype(xp: Any, x: Any) -> Any:
    """``x``'s dtype if floating, else ``xp``'s float64 (what NumPy computes integers in)."""
    if x.__class__ in PY_NUMBERS:
        return xp.complex128 if x.__class__ is complex else xp.float64
    dt = x.dtype
    return dt if xp.isdtype(dt, ("real floating", "complex floating")) else xp.float64


def floated(xp: Any, x: Any) -> Any:
    """``x`` as an array of ``xp`` in a floating dtype (its own if it has one)."""
    dt = float_dtype(xp, x)
    if x.__class__ in PY_NUMBERS:
        return xp.asarray(x, dtype=dt)
    return x if x.dtype == dt else xp.astype(x, dt)


def as_array(xp: Any, x: Any) -> Any:
    """A Python number as a 0-d array of ``xp``; an array as it is."""
    return xp.asarray(x) if x.__class__ in PY_NUMBERS else x


def index_array(xp: Any, positions: np.ndarray[Any, Any]) -> Any:
    """NumPy integer positions (derived from a static index, never from data) made an
    index of ``xp``: Dask indexes with NumPy arrays as they are (a Dask index would
    leave its chunks unknown), other libraries want their own arrays."""
    import array_api_compat

    if array_api_compat.is_dask_namespace(xp):
        return positions
    return xp.asarray(positions)


def reshape(xp: Any, a: Any, shape: tuple[int, ...]) -> Any:
    """``xp.reshape``, also where Dask refuses (it reshapes only by merging or splitting
    axes evenly across its chunks): through one flat axis, a merge then a split."""
    try:
        return xp.reshape(a, shape)
    except NotImplementedError:
        return xp.reshape(xp.reshape(a, (-1,)), shape)
