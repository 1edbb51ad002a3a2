"""The convolution and pooling ops' forms for another library's arrays (Dask, torch, JAX,
array-api-strict), in the array-API standard's functions of their own namespace.

The standard has no sliding-window view and no scatter-add, and JAX arrays cannot be
written into, so windows are one strided slice per kernel position (kernels are small,
slices large) and their adjoint builds each slice's contribution back to full size with
``concat`` and ``stack`` (zeros between strided elements, then on either side) and sums
them. Nothing is converted to NumPy, and nothing lazy is computed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["Geometry", "xp_conv", "xp_conv_input_grad", "xp_conv_weight_grad", "xp_float", "xp_pad",
           "xp_pool", "xp_pool_grad", "xp_pool_pick"]

Geometry = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def xp_float(xp: Any, a: Any) -> Any:
    return a if xp.isdtype(a.dtype, "real floating") else xp.astype(a, xp.float64)


def _reshape(xp: Any, a: Any, shape: tuple[int, ...]) -> Any:
    # Dask reshapes only by merging or splitting whole chunks: else through one flat axis.
    try:
        return xp.reshape(a, shape)
    except NotImplementedError:
        return xp.reshape(xp.reshape(a, (-1,)), shape)


def xp_pad(xp: Any, x: Any, padding: tuple[int, ...], value: float = 0.0) -> Any:
    """``x`` with ``padding`` elements of ``value`` on both sides of each spatial axis."""
    for ax, p in enumerate(padding, start=2):
        if p:
            shape = list(x.shape)
            shape[ax] = p
            side = xp.full(tuple(shape), value, dtype=x.dtype)
            x = xp.concat([side, x, side], axis=ax)
    return x


def _slices(x: Any, kernel: tuple[int, ...], s: tuple[int, ...], d: tuple[int, ...],
            out: tuple[int, ...]) -> list[Any]:
    """The windows of a padded array: for each kernel position, the strided slice of the
    elements it meets, (N, C, *out)."""
    parts = []
    for kk in np.ndindex(*kernel):
        index = (slice(None), slice(None), *(
            slice(k * di, k * di + si * (o - 1) + 1, si)
            for k, di, si, o in zip(kk, d, s, out)))
        parts.append(x[index])
    return parts


def _spread(xp: Any, c: Any, ax: int, step: int, start: int, length: int) -> Any:
    """``c`` placed along axis ``ax`` at start, start + step, ..., in zeros of ``length``."""
    n = c.shape[ax]
    if step > 1:
        # Zeros after each element: stack on a new axis, merge it in, drop the tail.
        z = xp.zeros_like(c)
        c = xp.stack([c, *[z] * (step - 1)], axis=ax + 1)
        c = _reshape(xp, c, (*c.shape[:ax], n * step, *c.shape[ax + 2:]))
        c = c[(slice(None),) * ax + (slice(0, step * (n - 1) + 1), Ellipsis)]
    pieces = []
    for width in (start, length - start - c.shape[ax]):
        if width:
            shape = list(c.shape)
            shape[ax] = width
            pieces.append(xp.zeros(tuple(shape), dtype=c.dtype))
    if not pieces:
        return c
    before = [pieces[0]] if start else []
    after = pieces[len(before):]
    return xp.concat([*before, c, *after], axis=ax)


def _unslice(xp: Any, parts: list[Any], kernel: tuple[int, ...], geometry: Geometry,
             size: tuple[int, ...]) -> Any:
    """The adjoint of ``_slices`` after ``xp_pad``: each part summed back into the
    positions it was read from, in an (N, C, *size) array, padding cropped off."""
    s, p, d, _ = geometry
    full = tuple(n + 2 * pi for n, pi in zip(size, p))
    total: Any = None
    for kk, c in zip(np.ndindex(*kernel), parts):
        for i, k in enumerate(kk):
            c = _spread(xp, c, 2 + i, s[i], k * d[i], full[i])
        total = c if total is None else total + c
    crop = (slice(None), slice(None), *(slice(pi, pi + n) for pi, n in zip(p, size)))
    return total[crop]


def _groups(xp: Any, a: Any, g: int) -> Any:
    """(N, C, *out) as (N, g, C / g, prod(out)): channels per group, positions flat."""
    return _reshape(xp, a, (a.shape[0], g, a.shape[1] // g, math.prod(a.shape[2:])))


def _weight_at(xp: Any, w: Any, kk: tuple[int, ...], g: int) -> Any:
    """The weight's (g, O / g, C / g) matrices at kernel position ``kk``."""
    index = (slice(None), slice(None), *kk)
    wk = w[index]
    return _reshape(xp, wk, (g, w.shape[0] // g, w.shape[1]))


def xp_conv(xp: Any, x: Any, w: Any, geometry: Geometry, groups: int) -> Any:
    """The convolution: a sum over kernel positions of weight-matrix products."""
    s, p, d, out = geometry
    kernel = tuple(w.shape[2:])
    r = None
    for kk, xs in zip(np.ndindex(*kernel), _slices(xp_pad(xp, x, p), kernel, s, d, out)):
        term = xp.matmul(_weight_at(xp, w, kk, groups), _groups(xp, xs, groups))
        r = term if r is None else r + term
    return _reshape(xp, r, (x.shape[0], w.shape[0], *out))


def xp_conv_input_grad(xp: Any, gy: Any, w: Any, size: tuple[int, ...], geometry: Geometry,
                       groups: int) -> Any:
    """The transposed convolution, shaped (N, C, *size)."""
    out = geometry[3]
    kernel = tuple(w.shape[2:])
    gg = _groups(xp, gy, groups)
    channels = w.shape[1] * groups
    parts = [_reshape(xp, xp.matmul(xp.matrix_transpose(_weight_at(xp, w, kk, groups)), gg),
                      (gy.shape[0], channels, *out)) for kk in np.ndindex(*kernel)]
    return _unslice(xp, parts, kernel, geometry, size)


def xp_conv_weight_grad(xp: Any, x: Any, gy: Any, kernel: tuple[int, ...],
                        geometry: Geometry, groups: int) -> Any:
    """The convolution's gradient for its weight, (O, C / groups, *kernel)."""
    s, p, d, out = geometry
    gg = _groups(xp, gy, groups)
    cols = []
    for xs in _slices(xp_pad(xp, x, p), kernel, s, d, out):
        prod = xp.matmul(gg, xp.matrix_transpose(_groups(xp, xs, groups)))
        cols.append(xp.sum(prod, axis=0))  # (g, O / g, C / g)
    stacked = xp.stack(cols, axis=-1)
    return _reshape(xp, stacked, (gy.shape[1], x.shape[1] // groups, *kernel))


def _pool_stack(xp: Any, x: Any, kernel: tuple[int, ...], geometry: Geometry,
                value: float) -> Any:
    s, p, d, out = geometry
    return xp.stack(_slices(xp_pad(xp, x, p, value), kernel, s, d, out), axis=-1)


def xp_pool(xp: Any, x: Any, kind: str, kernel: tuple[int, ...], geometry: Geometry) -> Any:
    """max (padding -inf) or mean (padding 0, counted) of each window."""
    if kind == "max":
        return xp.max(_pool_stack(xp, x, kernel, geometry, -math.inf), axis=-1)
    return xp.sum(_pool_stack(xp, x, kernel, geometry, 0.0), axis=-1) / math.prod(kernel)


def _argmax(xp: Any, x: Any, kernel: tuple[int, ...], geometry: Geometry) -> Any:
    return xp.argmax(_pool_stack(xp, x, kernel, geometry, -math.inf), axis=-1)


def xp_pool_grad(xp: Any, g: Any, x: Any, kind: str, kernel: tuple[int, ...],
                 geometry: Geometry) -> Any:
    """g put at each window's maximum of x (max), or spread over the window (avg)."""
    n = math.prod(kernel)
    if kind == "max":
        idx = _argmax(xp, x, kernel, geometry)
        zero = xp.zeros_like(g)
        parts = [xp.where(idx == k, g, zero) for k in range(n)]
    else:
        parts = [g / n] * n
    return _unslice(xp, parts, kernel, geometry, tuple(x.shape[2:]))


def xp_pool_pick(xp: Any, h: Any, x: Any, kernel: tuple[int, ...], geometry: Geometry) -> Any:
    """h read at each window's maximum of x."""
    idx = _argmax(xp, x, kernel, geometry)
    s, p, d, out = geometry
    parts = _slices(xp_pad(xp, h, p), kernel, s, d, out)
    r = xp.zeros_like(parts[0])
    for k, part in enumerate(parts):
        r = xp.where(idx == k, part, r)
    return r
