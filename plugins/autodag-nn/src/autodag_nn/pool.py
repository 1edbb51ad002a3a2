"""Pooling max_pool1d/2d and avg_pool1d/2d, as torch.nn.functional's (N, C, *spatial)
with kernel_size, stride (the kernel size by default) and padding; avg_pool counts the
zero padding (torch's count_include_pad=True), max_pool pads with -inf.

Gradients are helper ops: ``max_pool_grad`` scatters g to each window's maximum and
``max_pool_pick`` gathers values at those positions; each is the other's gradient in
its first input, and neither depends smoothly on the input that decides the positions
(its gradient there is zero away from ties). ``avg_pool_grad`` spreads g evenly over
each window; its gradient is the average pool again. So every order is exact.

NumPy arrays take strided window views (NumPy's stride tricks); another library's
arrays the forms of :mod:`._xp_windows`, in the array-API standard's functions, so every
op runs on any backend (``array_api=True``).
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from autodag import REQUIRED, OpDef, Sample

from ._windows import foreign_namespace, ints, on, out_size, pad, unwindow, windows
from ._xp_windows import Geometry, xp_float, xp_pool, xp_pool_grad, xp_pool_pick

__all__ = ["POOL_OPS"]

_Rng = np.random.Generator


def _float(a: Any) -> np.ndarray[Any, Any]:
    x = np.asarray(a)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def _geometry(op: str, x: Any, nd: int, kernel_size: Any, stride: Any, padding: Any
              ) -> Geometry:
    """kernel, stride, padding as tuples for an (N, C, *size) input, and the output size."""
    if len(x.shape) != nd + 2:
        raise ValueError(f"{op}: input must have {nd + 2} axes (N, C, ...), got shape "
                         f"{tuple(x.shape)}")
    k = ints(op, "kernel_size", kernel_size, nd)
    s = k if stride is None else ints(op, "stride", stride, nd)
    p = ints(op, "padding", padding, nd)
    if any(2 * pi > ki for pi, ki in zip(p, k)):
        raise ValueError(f"{op}: padding {p} must be at most half the kernel size {k}")
    return k, s, p, out_size(op, tuple(x.shape[2:]), k, s, p, (1,) * nd)


def _flat_windows(x: np.ndarray[Any, Any], k: tuple[int, ...], s: tuple[int, ...],
                  p: tuple[int, ...], value: float) -> np.ndarray[Any, Any]:
    """The windows (N, C, *out, prod(kernel)) of ``x`` padded with ``value``."""
    win = windows(pad(x, p, value), k, s, (1,) * len(k))
    return win.reshape((*win.shape[:2 + len(k)], math.prod(k)))


def _argmax(x: np.ndarray[Any, Any], k: tuple[int, ...], s: tuple[int, ...],
            p: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """Where in its (flattened) window each output's maximum lies, first on ties."""
    r: np.ndarray[Any, Any] = np.argmax(_flat_windows(x, k, s, p, -np.inf), axis=-1)
    return r


# --- forward rules ------------------------------------------------------------------
def _pool(nd: int, kind: str) -> Any:
    """The forward of ``max_pool{nd}d`` or ``avg_pool{nd}d`` (``kind`` "max" or "avg")."""
    op = f"{kind}_pool{nd}d"

    def forward(input: Any, kernel_size: Any, stride: Any, padding: Any) -> Any:
        xp = foreign_namespace(input)
        if xp is not None:
            x = xp_float(xp, input)
            k, s, p, out = _geometry(op, x, nd, kernel_size, stride, padding)
            return xp_pool(xp, x, kind, k, (s, p, (1,) * nd, out))
        x = _float(input)
        k, s, p, _ = _geometry(op, x, nd, kernel_size, stride, padding)
        if kind == "max":
            return np.max(_flat_windows(x, k, s, p, -np.inf), axis=-1)
        r = np.sum(_flat_windows(x, k, s, p, 0.0), axis=-1) / math.prod(k)
        return r.astype(x.dtype, copy=False)

    return forward


def _helper_geometry(op: str, g: Any, input: Any, kernel_size: Any, stride: Any,
                     padding: Any) -> Geometry:
    nd = len(input.shape) - 2
    k, s, p, out = _geometry(op, input, nd, kernel_size, stride, padding)
    if tuple(g.shape) != (*input.shape[:2], *out):
        raise ValueError(f"{op}: grad_output of shape {tuple(g.shape)} is not the "
                         f"pool's output shape {(*input.shape[:2], *out)}")
    return k, s, p, out


def _max_pool_grad(grad_output: Any, input: Any, kernel_size: Any, stride: Any,
                   padding: Any) -> Any:
    """grad_output added at each window's maximum of input, zero elsewhere."""
    xp = foreign_namespace(grad_output, input)
    if xp is not None:
        x, g = xp_float(xp, on(xp, input)), xp_float(xp, on(xp, grad_output))
        k, s, p, out = _helper_geometry("max_pool_grad", g, x, kernel_size, stride, padding)
        return xp_pool_grad(xp, g, x, "max", k, (s, p, (1,) * len(k), out))
    x, g = _float(input), _float(grad_output)
    k, s, p, _ = _helper_geometry("max_pool_grad", g, x, kernel_size, stride, padding)
    hot = _argmax(x, k, s, p)[..., None] == np.arange(math.prod(k))
    parts = np.where(hot, g[..., None], 0).astype(g.dtype, copy=False)
    return unwindow(parts.reshape(parts.shape[:-1] + k), tuple(x.shape[2:]), s, p,
                    (1,) * len(k))


def _max_pool_pick(h: Any, input: Any, kernel_size: Any, stride: Any, padding: Any) -> Any:
    """h (shaped like input) read where max_pool finds each window's maximum of input."""
    xp = foreign_namespace(h, input)
    if xp is not None:
        x, hv = xp_float(xp, on(xp, input)), xp_float(xp, on(xp, h))
    else:
        x, hv = _float(input), _float(h)
    if tuple(hv.shape) != tuple(x.shape):
        raise ValueError(f"max_pool_pick: h of shape {tuple(hv.shape)} must have the "
                         f"input's shape {tuple(x.shape)}")
    k, s, p, out = _geometry("max_pool_pick", x, len(x.shape) - 2, kernel_size, stride,
                             padding)
    if xp is not None:
        return xp_pool_pick(xp, hv, x, k, (s, p, (1,) * len(k), out))
    idx = _argmax(x, k, s, p)[..., None]
    return np.take_along_axis(_flat_windows(hv, k, s, p, 0.0), idx, axis=-1)[..., 0]


def _avg_pool_grad(grad_output: Any, input: Any, kernel_size: Any, stride: Any,
                   padding: Any) -> Any:
    """grad_output spread evenly over each window (padding included), shaped like input."""
    xp = foreign_namespace(grad_output, input)
    if xp is not None:
        g = xp_float(xp, on(xp, grad_output))
        k, s, p, out = _helper_geometry("avg_pool_grad", g, input, kernel_size, stride,
                                        padding)
        return xp_pool_grad(xp, g, input, "avg", k, (s, p, (1,) * len(k), out))
    g = _float(grad_output)
    k, s, p, _ = _helper_geometry("avg_pool_grad", g, np.asarray(input), kernel_size,
                                  stride, padding)
    spread = (g / math.prod(k)).reshape(g.shape + (1,) * len(k))
    parts = np.broadcast_to(spread, g.shape + k)
    return unwindow(parts, tuple(np.shape(input)[2:]), s, p, (1,) * len(k))


# --- backward rules -----------------------------------------------------------------
def _attrs(nd: int, kernel_size: Any, stride: Any, padding: Any) -> dict[str, Any]:
    """The helpers' attributes: tuples, whose length tells the spatial rank."""
    k = ints("pool", "kernel_size", kernel_size, nd)
    return {"kernel_size": k, "stride": k if stride is None else ints("pool", "stride",
                                                                      stride, nd),
            "padding": ints("pool", "padding", padding, nd)}


def _max_pool_vjp(nd: int) -> Any:
    def vjp(xp: Any, g: Any, out: Any, input: Any, kernel_size: Any, stride: Any,
            padding: Any) -> Any:
        return xp.max_pool_grad(g, input, **_attrs(nd, kernel_size, stride, padding))

    return vjp


def _avg_pool_vjp(nd: int) -> Any:
    def vjp(xp: Any, g: Any, out: Any, input: Any, kernel_size: Any, stride: Any,
            padding: Any) -> Any:
        return xp.avg_pool_grad(g, input, **_attrs(nd, kernel_size, stride, padding))

    return vjp


def _avg_pool_grad_vjp(xp: Any, h: Any, out: Any, g: Any, input: Any, kernel_size: Any,
                       stride: Any, padding: Any) -> Any:
    pool = getattr(xp, f"avg_pool{len(kernel_size)}d")
    return pool(h, kernel_size=kernel_size, stride=stride, padding=padding)


# --- samples ------------------------------------------------------------------------
def _cases(nd: int) -> list[tuple[tuple[int, ...], dict[str, Any]]]:
    sp = (5,) * nd
    return [((2, 2, *sp), {"kernel_size": 2}),
            ((1, 3, *sp), {"kernel_size": 3, "stride": 1}),
            ((1, 2, *sp), {"kernel_size": 3, "stride": 2, "padding": 1}),
            ((1, 2, *sp), {"kernel_size": (2,) * (nd - 1) + (3,), "stride": 1})]


def _pool_samples(nd: int) -> Any:
    def samples(rng: _Rng) -> list[Sample]:
        # A permutation: distinct values, so no window has a tie for its maximum.
        return [Sample((rng.permutation(math.prod(shape)).reshape(shape) / 4.0,), attrs)
                for shape, attrs in _cases(nd)]

    return samples


def _helper_samples(which: str) -> Any:
    def samples(rng: _Rng) -> list[Sample]:
        out = []
        for nd in (1, 2):
            for shape, attrs in _cases(nd):
                x = rng.permutation(math.prod(shape)).reshape(shape) / 4.0
                full = _attrs(nd, attrs["kernel_size"], attrs.get("stride"),
                              attrs.get("padding", 0))
                y = _pool(nd, "max")(x, **full)
                first = (rng.standard_normal(x.shape) if which == "pick"
                         else rng.standard_normal(y.shape))
                out.append(Sample((first, x), full))
        return out

    return samples


def _pool_op(kind: str, nd: int) -> OpDef:
    vjp = _max_pool_vjp(nd) if kind == "max" else _avg_pool_vjp(nd)
    forward = _pool(nd, kind)
    what = ("the maximum (padding -inf)" if kind == "max"
            else "the mean (zero padding counted)")
    return OpDef(name=f"{kind}_pool{nd}d", arity=1, forward=forward, backward=(vjp,),
                 attributes={"kernel_size": REQUIRED, "stride": None, "padding": 0},
                 input_names=("input",), samples=_pool_samples(nd), array_api=True,
                 doc=f"torch.nn.functional.{kind}_pool{nd}d: {what} of each window; stride "
                     "defaults to kernel_size; ints or tuples.")


_HELPER_ATTRS: Final = {"kernel_size": REQUIRED, "stride": REQUIRED, "padding": REQUIRED}

POOL_OPS: Final[tuple[OpDef, ...]] = (
    _pool_op("max", 1),
    _pool_op("max", 2),
    _pool_op("avg", 1),
    _pool_op("avg", 2),
    OpDef(name="max_pool_grad", arity=2, forward=_max_pool_grad,
          backward=(lambda xp, h, out, g, input, kernel_size, stride, padding:
                    xp.max_pool_pick(h, input, kernel_size=kernel_size, stride=stride,
                                     padding=padding), None),
          attributes=_HELPER_ATTRS, input_names=("grad_output", "input"),
          samples=_helper_samples("grad"), array_api=True,
          doc="grad_output put at each pooling window's maximum of input: the gradient of "
              "max_pool1d/2d (tuple attributes); none for input (zero away from ties)."),
    OpDef(name="max_pool_pick", arity=2, forward=_max_pool_pick,
          backward=(lambda xp, g, out, h, input, kernel_size, stride, padding:
                    xp.max_pool_grad(g, input, kernel_size=kernel_size, stride=stride,
                                     padding=padding), None),
          attributes=_HELPER_ATTRS, input_names=("h", "input"),
          samples=_helper_samples("pick"), array_api=True,
          doc="h read at each pooling window's maximum of input (tuple attributes): the "
              "gradient of max_pool_grad; none for input (zero away from ties)."),
    OpDef(name="avg_pool_grad", arity=2, forward=_avg_pool_grad,
          backward=(_avg_pool_grad_vjp, None),
          attributes=_HELPER_ATTRS, input_names=("grad_output", "input"),
          samples=_helper_samples("grad"), array_api=True,
          doc="grad_output spread evenly over each pooling window, shaped like input "
              "(whose values are not read; tuple attributes): the gradient of avg_pool."),
)
