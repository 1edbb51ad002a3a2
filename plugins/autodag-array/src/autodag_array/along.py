"""take_along_axis with its indices as an input (so they may come from data, argsort's
say), and its gradient put_along_axis_add; sort's gradient is one too.

The indices are an integer input that is not differentiated. On NumPy values the ops
are ``numpy.take_along_axis`` and ``numpy.add.at``. On another library's arrays the
positions depend on data, which the standard can neither index with on every library
(Dask loses its chunk sizes) nor write at: both ops then compare the indices with every
position along the axis (a one-hot mask, ``indices.size * n`` elements) and sum; a
library with ``take_along_axis`` (array-api-strict, JAX, torch) takes values with it.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from autodag import OpDef, Sample
from autodag.axes import checked_axes as _checked_axes
from autodag.backend import namespace_of

from ._xp import float_dtype, foreign, reshape, shape_of

__all__ = ["PUT_ALONG_AXIS_ADD", "TAKE_ALONG_AXIS"]

_Rng = np.random.Generator


def _axis(op: str, axis: Any, shape: tuple[int, ...]) -> int:
    (ax,) = _checked_axes(op, axis, shape, tuples=False, none=False)
    return ax


def _np_index(indices: Any, shape: tuple[int, ...], ax: int) -> tuple[Any, ...]:
    """The fancy index NumPy's take_along_axis reads: ``indices`` on ``ax``, each other
    axis its coordinates, broadcast against the indices."""
    idx = np.asarray(indices)
    nd = len(shape)
    return tuple(idx if d == ax else np.arange(shape[d]).reshape(
        (1,) * d + (-1,) + (1,) * (nd - d - 1)) for d in range(nd))


def _one_hot(xp: Any, indices: Any, n: int, ax: int, dtype: Any) -> Any:
    """Float mask of shape ``indices.shape + (n,)``: 1 where the index (negative ones
    counted from the end) names that position of the axis."""
    idx = xp.where(indices < 0, indices + n, indices)
    return xp.astype(xp.expand_dims(idx, axis=-1) == xp.arange(n), dtype)


def _take_along_axis(arr: Any, indices: Any, axis: Any) -> Any:
    if not (foreign(arr) or foreign(indices)):
        return np.take_along_axis(np.asarray(arr), np.asarray(indices), axis=axis)
    xp = namespace_of(arr, indices)
    if axis is None:
        arr, axis = reshape(xp, arr, (-1,)), 0
    ax = _axis("take_along_axis", axis, shape_of(arr))
    if hasattr(xp, "take_along_axis"):
        return xp.take_along_axis(arr, indices, axis=ax)
    # (..., m, ..., n): each index against the whole axis, moved last.
    dt = float_dtype(xp, arr)
    hot = _one_hot(xp, indices, shape_of(arr)[ax], ax, dt)
    vals = xp.expand_dims(xp.astype(arr, dt), axis=ax)  # (..., 1, ..., n, ...)
    nd = len(shape_of(arr))
    vals = xp.permute_dims(vals, (*[d for d in range(nd + 1) if d != ax + 1], ax + 1))
    return xp.sum(hot * vals, axis=-1)


def _put_along_axis_add(g: Any, indices: Any, like: Any, axis: Any) -> Any:
    shape = shape_of(like)
    if not (foreign(g) or foreign(indices) or foreign(like)):
        z = np.zeros(shape, dtype=float_dtype(np, np.asarray(g)))
        flat = z.reshape(-1) if axis is None else z
        ax = 0 if axis is None else _axis("put_along_axis_add", axis, shape)
        idx = _np_index(indices, flat.shape, ax)
        np.add.at(flat, idx, np.broadcast_to(g, np.broadcast_shapes(*(i.shape for i in idx))))
        return z
    xp = namespace_of(g, indices, like)
    full = shape
    if axis is None:
        shape, axis = (int(np.prod(shape)),), 0
    ax = _axis("put_along_axis_add", axis, shape)
    dt = float_dtype(xp, g)
    gf = xp.asarray(g, dtype=dt) if not hasattr(g, "shape") else xp.astype(g, dt)
    hot = _one_hot(xp, indices, shape[ax], ax, dt)  # (..., m, ..., n)
    summed = xp.sum(hot * xp.expand_dims(gf, axis=-1), axis=ax)  # (..., n) axis gone
    nd = len(shape)
    back = xp.permute_dims(summed, (*range(ax), nd - 1, *range(ax, nd - 1)))
    # Axes the indices broadcast along (length 1 in `like`) gathered several rows.
    rows = tuple(d for d in range(nd) if d != ax and shape[d] == 1 and back.shape[d] != 1)
    if rows:
        back = xp.sum(back, axis=rows, keepdims=True)
    return reshape(xp, xp.broadcast_to(back, shape), full)


def _take_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((3, 4))
    return [
        Sample((x, np.argsort(x, axis=1)), {"axis": 1}),
        Sample((x, np.array([[0, 2, 2, -1], [1, 0, 0, 2]])), {"axis": 0}),
        Sample((x, np.array([[3], [0], [3]])), {"axis": -1}),
        Sample((x, np.array([11, 0, 5, 5])), {"axis": None}),
        Sample((x[:1], np.array([[0, 3], [1, 1]])), {"axis": 1}),
    ]


def _put_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((3, 4)), np.array([[0, 2, 2, 3], [1, 0, 0, 2], [3, 3, 3, 3]]), r((3, 4))),
               {"axis": 1}),
        Sample((r((2, 4)), np.array([[0, 2, 2, -1], [1, 0, 0, 2]]), r((3, 4))), {"axis": 0}),
        Sample((r((4,)), np.array([11, 0, 5, 5]), r((3, 4))), {"axis": None}),
        Sample((r((2, 2)), np.array([[0, 3], [1, 1]]), r((1, 4))), {"axis": 1}),
    ]


TAKE_ALONG_AXIS: Final = OpDef(
    name="take_along_axis", arity=2, attributes={"axis": -1}, forward=_take_along_axis,
    backward=(lambda xp, g, out, arr, indices, axis: xp.put_along_axis_add(
        g, indices, arr, axis=axis), None),
    input_names=("arr", "indices"), samples=_take_samples, array_api=True,
    doc="Values of arr at integer indices along axis (None: of the flattened arr), as "
        "numpy.take_along_axis. indices is an input (a Constant, say argsort's output) "
        "and is not differentiated; repeated indices accumulate their gradients.",
)
PUT_ALONG_AXIS_ADD: Final = OpDef(
    name="put_along_axis_add", arity=3, attributes={"axis": -1},
    forward=_put_along_axis_add,
    backward=(lambda xp, h, out, g, indices, like, axis: xp.take_along_axis(
        h if axis is not None else xp.ravel(h), indices, axis=axis if axis is not None
        else 0), None, None),
    samples=_put_samples, array_api=True,
    doc="Zeros shaped like `like` with g added at indices along axis (repeats "
        "accumulate): take_along_axis's gradient.",
)
