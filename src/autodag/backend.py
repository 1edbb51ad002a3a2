"""Array backends: which array namespace a run computes in.

autodag computes with NumPy and Python numbers unless the values of a run (its
Variables, Constants and fed values) are arrays of another array-API library: Dask,
CuPy, array-api-strict, ... (recognised through ``__array_namespace__`` or
``array-api-compat``). One backend per run: Python numbers mix with any backend, NumPy
arrays only with a backend that takes them as its own (Dask, whose chunked data sits
next to small NumPy parameters); any other mixture is a ``BackendError`` naming the
values and their types. Nothing is ever converted from one library to another.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any, Final

import numpy as np

from .errors import AutodagError

__all__ = [
    "BackendError",
    "backend_name",
    "broadcast_as",
    "is_array",
    "is_numpy",
    "namespace_of",
    "run_namespace",
    "writable",
]

_PY_NUMBERS: Final = (bool, int, float, complex)
_NUMPY_TYPES: Final = (np.ndarray, np.generic, *_PY_NUMBERS)


class BackendError(AutodagError, TypeError):
    """Values of array libraries that do not mix, or an op that cannot run on a backend."""


def is_numpy(value: Any) -> bool:
    """Whether ``value`` is a Python number or a NumPy array or scalar (the fast path)."""
    cls = value.__class__
    return cls is np.ndarray or cls is float or isinstance(value, _NUMPY_TYPES)


def is_array(value: Any) -> bool:
    """Whether ``value`` is an array of an array-API library other than NumPy."""
    if is_numpy(value):
        return False
    if hasattr(value, "__array_namespace__"):
        return True
    import array_api_compat

    return bool(array_api_compat.is_array_api_obj(value))


def backend_name(xp: Any) -> str:
    """A namespace's library name for messages (``numpy``, ``dask.array``, ``cupy``...)."""
    name = getattr(xp, "__name__", None) or type(xp).__name__
    return str(name).removeprefix("array_api_compat.")


def _foreign_namespace(value: Any) -> ModuleType:
    import array_api_compat

    try:
        return array_api_compat.array_namespace(value)
    except TypeError as exc:
        raise BackendError(
            f"values of type {type(value).__module__}.{type(value).__name__} are not arrays "
            f"of an array-API library autodag can compute with: {exc}"
        ) from None


def _takes_numpy(xp: Any) -> bool:
    """Whether a backend computes with NumPy arrays among its own (Dask does)."""
    import array_api_compat

    return bool(array_api_compat.is_dask_namespace(xp))


def namespace_of(*values: Any) -> Any:
    """The array namespace to compute ``values`` with: ``numpy`` for NumPy arrays and
    Python numbers, else their library's (through array-api-compat).

    For forward rules that should run on any backend: ``xp = namespace_of(a, b)``.
    """
    return run_namespace(values)


def run_namespace(values: Iterable[Any], labels: Iterable[str] | None = None) -> Any:
    """The one namespace of a run's ``values`` (``labels`` name them in errors)."""
    vals = list(values)
    names = list(labels) if labels is not None else [f"value {k}" for k in range(len(vals))]
    foreign: list[tuple[str, Any, Any]] = []
    numpy_like: list[tuple[str, Any]] = []
    for label, v in zip(names, vals, strict=False):
        if v.__class__ in _PY_NUMBERS:
            continue
        if is_numpy(v):
            numpy_like.append((label, v))
        else:
            foreign.append((label, v, _foreign_namespace(v)))
    if not foreign:
        return np
    xp = foreign[0][2]
    for label, v, other in foreign[1:]:
        if other is not xp:
            raise BackendError(
                f"one run mixes array libraries: {foreign[0][0]} is "
                f"{_type_name(foreign[0][1])} ({backend_name(xp)}) but {label} is "
                f"{_type_name(v)} ({backend_name(other)}); convert them to one library"
            )
    if numpy_like and not _takes_numpy(xp):
        label, v = numpy_like[0]
        raise BackendError(
            f"one run mixes array libraries: {foreign[0][0]} is {_type_name(foreign[0][1])} "
            f"({backend_name(xp)}) but {label} is {_type_name(v)}, a NumPy value, which "
            f"{backend_name(xp)} does not compute with; convert it "
            f"({backend_name(xp)}.asarray) or use Python numbers"
        )
    return xp


def _type_name(v: Any) -> str:
    cls = type(v)
    return f"{cls.__module__}.{cls.__qualname__}"


def broadcast_as(xp: Any, x: Any, like: Any, shape: tuple[int, ...] | None = None) -> Any:
    """``x`` (an array of ``xp`` or a number) broadcast to ``shape`` (default: ``like``'s),
    in namespace ``xp``; a Python number takes ``like``'s dtype where it fits. On Dask
    the result has ``like``'s chunks and is made where it is read: a number becomes
    ``dask.array.full`` (each chunk a view of one element, made inside the tasks that read
    it: no memory, task or transfer of its own), anything else ``zeros_like(like) + x``
    (elementwise, so fused into its readers)."""
    target = tuple(like.shape) if shape is None else shape
    if getattr(like, "chunks", None) is not None and tuple(like.shape) == target and (
            _takes_numpy(xp)):
        if not getattr(x, "ndim", 0) and getattr(x, "chunks", None) is None:
            return _dask_fill(x, like)
        dtype = getattr(x, "dtype", None)
        return xp.zeros_like(like, dtype=dtype) + x
    if x.__class__ in _PY_NUMBERS and xp is not np:
        x = xp.asarray(x, dtype=_number_dtype(xp, x, like))
    elif isinstance(x, np.generic) and xp is not np:
        x = xp.asarray(x)
    return xp.broadcast_to(x, target)


def _number_dtype(xp: Any, x: Any, like: Any) -> Any:
    # NumPy's rule for a Python number beside an array: the array's dtype where the
    # number's kind fits in it (torch would make a float32 of any float).
    dt = getattr(like, "dtype", None)
    if dt is None:
        return None
    if xp.isdtype(dt, "complex floating") or (
            xp.isdtype(dt, "real floating") and x.__class__ is not complex):
        return dt
    if x.__class__ is complex:
        return xp.complex128
    if x.__class__ is float:
        return xp.float64
    return dt if xp.isdtype(dt, "integral") or x.__class__ is bool else xp.int64


# Names no other array has: a gradient handed to a user must not be a read-only fill.
_FILL_PREFIX: Final = "gradient-fill-"


def _dask_fill(x: Any, like: Any) -> Any:
    import dask.array as da
    from dask.base import tokenize

    full: Any = da.full  # untyped in dask

    # As ``zeros_like(like) + x``: a Python number takes ``like``'s dtype where it fits.
    dtype = x.dtype if hasattr(x, "dtype") else np.result_type(like.dtype, x)
    name = _FILL_PREFIX + tokenize(x, dtype, like.chunks)
    return full(like.shape, x, dtype=dtype, chunks=like.chunks, name=name)


def writable(xp: Any, g: Any) -> Any:
    """``g``, or a copy where it is one of ``broadcast_as``'s read-only Dask fills: a
    gradient handed to a user is an array of its own, as on NumPy."""
    name = getattr(g, "name", None)
    if isinstance(name, str) and name.startswith(_FILL_PREFIX):
        return g * 1  # elementwise: a new, writable array, made chunk by chunk
    return g
