"""Sliding windows over the spatial axes of an (N, C, *spatial) NumPy array, and their
adjoint: what the convolution and pooling ops share.

``windows`` is a strided view (no copy) of shape (N, C, *out, *kernel); ``unwindow``
sums such an array back into the positions each window element was read from, which is
the transpose of ``windows`` and so the gradient of every op built on it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from autodag.backend import BackendError, is_array, namespace_of

__all__ = ["foreign_namespace", "ints", "numpy_only", "on", "out_size", "pad", "unwindow",
           "windows"]

_NUMPY = frozenset({np.ndarray, bool, int, float, complex, *np.sctypeDict.values()})


def numpy_only(op: str, *values: Any) -> None:
    """Refuse another library's arrays: a NumPy-only forward never converts them (a
    Dask array would be computed), whoever calls it (static shape inference too)."""
    for v in values:
        if v.__class__ not in _NUMPY and is_array(v):
            raise BackendError(f"op {op!r} is NumPy only (array_api=False): it cannot run on "
                               f"{type(v).__module__}.{type(v).__name__} values")


def foreign_namespace(*values: Any) -> Any:
    """The namespace of the values when one is another library's array, else None (the
    NumPy fast path)."""
    for v in values:
        if v.__class__ not in _NUMPY and is_array(v):
            return namespace_of(*values)
    return None


def on(xp: Any, v: Any) -> Any:
    """``v`` as an array of ``xp`` (a NumPy parameter beside another library's arrays)."""
    return v if v.__class__ not in _NUMPY and is_array(v) else xp.asarray(v)


def ints(op: str, name: str, value: Any, nd: int) -> tuple[int, ...]:
    """An int-or-tuple attribute (torch's convention) as a tuple of ``nd`` ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * nd
    if isinstance(value, (tuple, list)) and len(value) == nd and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        return tuple(int(v) for v in value)
    # An array here is most likely torch's bias, which these ops leave to the caller.
    hint = " (bias is no argument: add it by broadcasting)" if hasattr(value, "shape") else ""
    raise ValueError(f"{op}: {name} must be an int or a tuple of {nd} ints, got "
                     f"{value!r}{hint}")


def out_size(op: str, size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
             padding: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[int, ...]:
    """torch's output size: floor((n + 2p - d (k - 1) - 1) / s) + 1 per spatial axis."""
    out = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                for n, k, s, p, d in zip(size, kernel, stride, padding, dilation))
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation) or any(p < 0 for p in padding):
        raise ValueError(f"{op}: stride and dilation must be >= 1 and padding >= 0, got "
                         f"stride={stride}, padding={padding}, dilation={dilation}")
    if any(o < 1 for o in out):
        raise ValueError(f"{op}: a kernel of size {kernel} (dilation {dilation}) does not "
                         f"fit an input of spatial size {size} with padding {padding}")
    return out


def pad(x: np.ndarray[Any, Any], padding: tuple[int, ...], value: float = 0.0
        ) -> np.ndarray[Any, Any]:
    """``x`` padded by ``padding`` on both sides of each spatial axis."""
    if not any(padding):
        return x
    return np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding], constant_values=value)


def windows(xp: np.ndarray[Any, Any], kernel: tuple[int, ...], stride: tuple[int, ...],
            dilation: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """The (N, C, *out, *kernel) view of the windows of an already padded array."""
    nd = len(kernel)
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    view = sliding_window_view(xp, span, axis=tuple(range(2, 2 + nd)))
    steps = tuple(slice(None, None, s) for s in stride) + tuple(
        slice(None, None, d) for d in dilation)
    index = (slice(None), slice(None), *steps)
    return view[index]


def unwindow(parts: np.ndarray[Any, Any], size: tuple[int, ...], stride: tuple[int, ...],
             padding: tuple[int, ...], dilation: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """The adjoint of ``windows`` after ``pad``: ``parts`` (N, C, *out, *kernel) summed
    into an (N, C, *size) array, padding cropped off."""
    nd = len(size)
    out = parts.shape[2:2 + nd]
    kernel = parts.shape[2 + nd:]
    full = np.zeros(parts.shape[:2] + tuple(n + 2 * p for n, p in zip(size, padding)),
                    dtype=parts.dtype)
    # One strided slice per kernel position: kernels are small, the slices large.
    for kk in np.ndindex(*kernel):
        dst = tuple(slice(k * d, k * d + s * (o - 1) + 1, s)
                    for k, d, s, o in zip(kk, dilation, stride, out))
        dst_index, src_index = (slice(None), slice(None), *dst), (Ellipsis, *kk)
        full[dst_index] += parts[src_index]
    crop = (slice(None), slice(None), *(slice(p, p + n) for p, n in zip(padding, size)))
    return full[crop]
