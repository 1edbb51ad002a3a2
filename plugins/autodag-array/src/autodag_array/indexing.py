"""Indexing: getitem (basic and integer-array indexing) and its gradient, scatter_add.

The index is a static attribute, so everything about it is known before any data is
read. On NumPy values both ops are NumPy's indexing and ``numpy.add.at``. On another
library's arrays:

* a basic index (ints, slices, Ellipsis, None) is the library's own indexing, and its
  gradient is written into zeros (``z[index] = g``), which every library autodag
  targets allows for basic indices;
* an index holding arrays (integer arrays, lists, boolean masks) is turned, with NumPy
  on the index alone, into the flat position of every element it picks. getitem is
  then one ``take`` of the flattened input, whatever the library allows to index with
  (array-api-strict takes no slice beside an array, Dask no two arrays). scatter_add
  first sums the gradients of repeated positions (groups of equal count gathered into
  rows and summed, so ``numpy.add.at``'s accumulation without a write per repeat), then
  places the sums: Dask writes them into zeros (``z[positions] = sums``, no array of
  the input's size), other libraries ``take`` them through the inverse map of the
  positions.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from autodag import REQUIRED, OpDef, Sample
from autodag.backend import BackendError, backend_name, is_array, namespace_of

from ._xp import NUMPY, PY_NUMBERS, float_dtype, index_array, reshape, shape_of

__all__ = ["GETITEM", "SCATTER_ADD"]

_Rng = np.random.Generator
_BASIC: Final = (int, np.integer, slice, type(Ellipsis), type(None))


def _float_dtype(x: Any) -> np.dtype[Any]:
    dt = np.result_type(x)
    return dt if dt.kind in "fc" else np.dtype(np.float64)


def _has_array_index(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, tuple, np.ndarray)) for p in parts)


# --- NumPy values -------------------------------------------------------------------
def _getitem(a: Any, index: Any) -> Any:
    if a.__class__ not in NUMPY and is_array(a):
        return _xp_getitem(a, index)
    return np.asarray(a)[index]


def _scatter_add(g: Any, like: Any, index: Any) -> Any:
    if ((g.__class__ not in NUMPY and is_array(g))
            or (like.__class__ not in NUMPY and is_array(like))):
        return _xp_scatter_add(g, like, index)
    z = np.zeros(np.shape(like), dtype=_float_dtype(g))
    if _has_array_index(index):
        np.add.at(z, index, g)  # repeated indices accumulate, as the forward read them twice
    else:
        z[index] += g
    return z


# --- the index, read with NumPy (it is static: no data is involved) -------------------
def _parts(index: Any) -> tuple[Any, ...]:
    return index if isinstance(index, tuple) else (index,)


def _is_basic(index: Any) -> bool:
    """Ints, slices, Ellipsis and None only (bools are masks, as NumPy reads them)."""
    return all(isinstance(p, _BASIC) and not isinstance(p, (bool, np.bool_))
               for p in _parts(index))


def _full(parts: tuple[Any, ...]) -> tuple[Any, ...]:
    """A basic index as strict libraries take it: Python ints, and an Ellipsis when it
    does not name every axis (which NumPy assumes at the end)."""
    out = tuple(int(p) if isinstance(p, np.integer) else p for p in parts)
    return out if Ellipsis in out else (*out, Ellipsis)


def _dummy(shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """A zero-stride NumPy array of ``shape``: indexing it gives the result's shape."""
    return np.broadcast_to(np.empty((), dtype=np.bool_), shape)


def _foreign_parts(op: str, xp: Any, index: Any) -> None:
    for p in _parts(index):
        if not isinstance(p, (*_BASIC, bool, np.bool_, list, tuple, np.ndarray)):
            raise BackendError(
                f"{op} on {backend_name(xp)} arrays: the index holds a "
                f"{type(p).__module__}.{type(p).__name__}; an index is static, so its "
                f"arrays are NumPy arrays or lists (ints, slices, None and Ellipsis "
                f"besides), read before any data is")


def _positions(index: Any, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """The flat (C-order) position in an array of ``shape`` of every element
    ``a[index]`` picks, shaped like ``a[index]``: NumPy's own reading of the index,
    applied to one zero-stride view of each axis's coordinates (nothing of the
    array's size is made)."""
    if not shape:
        return np.asarray(np.zeros((), dtype=np.intp)[index])
    pos: Any = None
    stride = 1
    for ax in reversed(range(len(shape))):
        coords = np.arange(shape[ax], dtype=np.intp).reshape(
            (shape[ax],) + (1,) * (len(shape) - ax - 1))
        picked = np.broadcast_to(coords, shape)[index] * stride
        pos = picked if pos is None else pos + picked
        stride *= shape[ax]
    return np.asarray(pos)


def _known(op: str, xp: Any, shape: tuple[Any, ...]) -> tuple[int, ...]:
    if any(s is None or s != s for s in shape):  # None, or Dask's nan: unknown chunks
        raise BackendError(
            f"{op} on {backend_name(xp)} arrays of unknown shape {shape} (after a "
            "data-dependent step): the positions an index picks need the shape; compute "
            "the chunk sizes first (dask: x.compute_chunk_sizes())")
    return shape


# --- other libraries' arrays --------------------------------------------------------
def _single_array_axis(parts: tuple[Any, ...]) -> bool:
    """One 1-D integer array among slices and Ellipsis: Dask's own indexing reads it as
    NumPy does, keeping the chunks of the other axes."""
    arrays = [p for p in parts if not isinstance(p, (slice, type(Ellipsis)))]
    if len(arrays) != 1:
        return False
    p = np.asarray(arrays[0])
    return p.ndim == 1 and p.dtype.kind in "iu"


def _xp_getitem(a: Any, index: Any) -> Any:
    xp = namespace_of(a)
    _foreign_parts("getitem", xp, index)
    parts = _parts(index)
    if _is_basic(index):
        return a[_full(parts)]
    import array_api_compat

    if array_api_compat.is_dask_namespace(xp) and _single_array_axis(parts):
        return a[tuple(np.asarray(p) if isinstance(p, list) else p for p in parts)]
    pos = _positions(index, _known("getitem", xp, shape_of(a)))
    flat = xp.take(reshape(xp, a, (-1,)), index_array(xp, pos.reshape(-1)), axis=0)
    return reshape(xp, flat, pos.shape)


def _sums_by_position(xp: Any, g: Any, pos: np.ndarray[Any, Any]) -> tuple[Any, Any]:
    """The distinct positions of ``pos`` (NumPy) and, in ``xp``, the sum of the entries
    of ``g`` (flat, one per position) at each: repeats summed in rows, one gather and
    one sum per group of counts within a factor of two (so padding at most doubles)."""
    n = pos.size
    order = np.argsort(pos, kind="stable")  # each repeat in the order the forward read it
    ordered = pos[order]
    first = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    if first.size == n:
        return pos, g  # no repeats: each entry is its position's sum
    counts = np.diff(np.append(first, n))
    padded = xp.concat([g, xp.zeros((1,), dtype=g.dtype)])  # entry n: a zero to pad with
    bucket = np.ceil(np.log2(counts)).astype(np.intp)
    keys, sums = [], []
    for b in np.unique(bucket):
        rows = np.flatnonzero(bucket == b)
        width = int(counts[rows].max())
        cols = np.arange(width)
        take = first[rows, None] + cols
        idx = np.where(cols < counts[rows, None], order[np.minimum(take, n - 1)], n)
        picked = xp.take(padded, index_array(xp, idx.reshape(-1)), axis=0)
        sums.append(xp.sum(xp.reshape(picked, idx.shape), axis=1))
        keys.append(ordered[first[rows]])
    return np.concatenate(keys), xp.concat(sums) if len(sums) > 1 else sums[0]


def _xp_scatter_add(g: Any, like: Any, index: Any) -> Any:
    xp = namespace_of(g, like)
    _foreign_parts("scatter_add", xp, index)
    shape = _known("scatter_add", xp, shape_of(like))
    dtype = float_dtype(xp, g)
    if g.__class__ in PY_NUMBERS or isinstance(g, np.generic):
        g = xp.asarray(g, dtype=dtype)
    elif g.dtype != dtype:
        g = xp.astype(g, dtype)
    parts = _parts(index)
    import array_api_compat

    z = xp.zeros(shape, dtype=dtype)
    if _is_basic(index) and array_api_compat.is_writeable_array(z):
        # Each element is picked once: a plain write. None adds a length-1 axis to the
        # forward's result but names no axis of the zeros, so it is left out here.
        # (JAX's arrays are never written: they take the gather below.)
        key = _full(tuple(p for p in parts if p is not None))
        g = xp.broadcast_to(g, _dummy(shape)[index].shape)
        z[key] = reshape(xp, g, _dummy(shape)[key].shape)
        return z
    pos = _positions(index, shape)
    if not pos.size:  # nothing picked (an empty index, an all-False mask)
        return z
    g = reshape(xp, xp.broadcast_to(g, pos.shape), (-1,))
    keys, sums = _sums_by_position(xp, g, pos.reshape(-1))
    size = math.prod(shape)
    if array_api_compat.is_dask_namespace(xp):
        z = xp.zeros((size,), dtype=dtype)
        z[keys] = sums
        return reshape(xp, z, shape)
    # The standard writes no integer-array index: each position instead takes its sum
    # (or the zero appended after them) through the inverse map of the positions.
    inverse = np.full(size, keys.size, dtype=np.intp)
    inverse[keys] = np.arange(keys.size)
    padded = xp.concat([sums, xp.zeros((1,), dtype=dtype)])
    return reshape(xp, xp.take(padded, index_array(xp, inverse), axis=0), shape)


# --- sample inputs for autodag.testing.check_op -------------------------------------
def _getitem_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((4, 5))
    return [
        Sample((x,), {"index": (slice(1, None), np.array([0, 2, 2]))}),
        Sample((x,), {"index": np.array([3, 0, 3, 3])}),
        Sample((x,), {"index": (1, slice(None, None, 2))}),
        Sample((x,), {"index": (Ellipsis, None, -1)}),
        Sample((x,), {"index": x[:, 0] > 0}),
        Sample((x,), {"index": (np.array([[0, 1], [1, 3]]), np.array([[4, 4], [0, 2]]))}),
        Sample((x,), {"index": 2}),
    ]


def _scatter_add_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((3,)), r((5,))), {"index": np.array([0, 4, 0])}),
        Sample((r((2, 2)), r((3, 4))), {"index": (slice(1, None), slice(None, 2))}),
    ]


GETITEM: Final = OpDef(
    name="getitem", arity=1, attributes={"index": REQUIRED}, forward=_getitem,
    backward=(lambda xp, g, out, a, index: xp.scatter_add(g, a, index=index),),
    input_names=("a",), samples=_getitem_samples, array_api=True,
    doc="a[index], basic and integer-array indexing; x[...] builds it. Repeated "
        "indices accumulate their gradients (numpy.add.at).",
)
SCATTER_ADD: Final = OpDef(
    name="scatter_add", arity=2, attributes={"index": REQUIRED}, forward=_scatter_add,
    backward=(lambda xp, h, out, g, like, index: xp.getitem(h, index=index), None),
    samples=_scatter_add_samples, array_api=True,
    doc="Zeros shaped like `like` with g added at index (numpy.add.at): getitem's "
        "gradient.",
)
