"""ONNX converters of the nn ops (``autodag_onnx_converters``); no import of onnx here.

Formulas are written with ONNX's basic ops (Exp, Log, Where, Max, Reduce*) rather than
its activation ops where onnxruntime's CPU kernels of those exist for float32 only, so
that float64 graphs run too. The gradient helpers of pooling and convolution
(max_pool_grad, max_pool_pick, avg_pool_grad, conv_input_grad, conv_weight_grad) have no
converter: ONNX has no op for them short of ConvTranspose and index arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

import autodag

if TYPE_CHECKING:
    from autodag.onnx import Context

__all__ = ["CONVERTERS", "autodag_onnx_converters"]

_SQRT_2: Final = math.sqrt(2.0)
_TANH_C: Final = math.sqrt(2.0 / math.pi)
_TANH_K: Final = 0.044715
_INV_SQRT_2PI: Final = 1.0 / math.sqrt(2.0 * math.pi)


def _c(ctx: Context, value: float) -> str:
    return ctx.constant(value, ctx.out_dtype)


def _relu(ctx: Context) -> str:
    return ctx.op("Max", [ctx.input(0), _c(ctx, 0.0)])


def _log1p_exp_neg_abs(ctx: Context, x: str) -> str:
    """log(1 + exp(-|x|)): never overflows."""
    e = ctx.op("Exp", [ctx.op("Neg", [ctx.op("Abs", [x])])])
    return ctx.op("Log", [ctx.op("Add", [_c(ctx, 1.0), e])])


def _softplus(ctx: Context) -> str:
    x = ctx.input(0)
    return ctx.op("Add", [ctx.op("Max", [x, _c(ctx, 0.0)]), _log1p_exp_neg_abs(ctx, x)])


def _log_sigmoid(ctx: Context) -> str:
    x = ctx.input(0)
    return ctx.op("Sub", [ctx.op("Min", [x, _c(ctx, 0.0)]), _log1p_exp_neg_abs(ctx, x)])


def _sigmoid(ctx: Context) -> str:
    return ctx.op("Sigmoid", [ctx.input(0)])


def _silu(ctx: Context) -> str:
    x = ctx.input(0)
    return ctx.op("Mul", [x, ctx.op("Sigmoid", [x])])


def _positive_or(ctx: Context, x: str, other: str) -> str:
    return ctx.op("Where", [ctx.op("Greater", [x, _c(ctx, 0.0)]), x, other])


def _elu(ctx: Context) -> str:
    x = ctx.input(0)
    e = ctx.op("Sub", [ctx.op("Exp", [ctx.op("Min", [x, _c(ctx, 0.0)])]), _c(ctx, 1.0)])
    return _positive_or(ctx, x, ctx.op("Mul", [_c(ctx, ctx.attrs["alpha"]), e]))


def _leaky_relu(ctx: Context) -> str:
    x = ctx.input(0)
    return _positive_or(ctx, x, ctx.op("Mul", [_c(ctx, ctx.attrs["negative_slope"]), x]))


def _tanh_arg(ctx: Context, x: str) -> str:
    cube = ctx.op("Mul", [x, ctx.op("Mul", [x, x])])
    inner = ctx.op("Add", [x, ctx.op("Mul", [_c(ctx, _TANH_K), cube])])
    return ctx.op("Tanh", [ctx.op("Mul", [_c(ctx, _TANH_C), inner])])


def _phi(ctx: Context, x: str) -> str:
    """Phi(x) = 0.5 (1 + erf(x / sqrt 2)), the normal distribution function."""
    erf = ctx.op("Erf", [ctx.op("Div", [x, _c(ctx, _SQRT_2)])])
    return ctx.op("Mul", [_c(ctx, 0.5), ctx.op("Add", [_c(ctx, 1.0), erf])])


def _gelu(ctx: Context) -> str:
    x = ctx.input(0)
    if ctx.attrs["approximate"] == "tanh":
        half = ctx.op("Mul", [_c(ctx, 0.5), ctx.op("Add", [_c(ctx, 1.0), _tanh_arg(ctx, x)])])
        return ctx.op("Mul", [x, half])
    return ctx.op("Mul", [x, _phi(ctx, x)])


def _gelu_grad(ctx: Context) -> str:
    x = ctx.input(0)

    def mul(a: str, b: str) -> str:
        return ctx.op("Mul", [a, b])

    def add(a: str, b: str) -> str:
        return ctx.op("Add", [a, b])

    if ctx.attrs["approximate"] == "tanh":
        t = _tanh_arg(ctx, x)
        du = mul(_c(ctx, _TANH_C), add(_c(ctx, 1.0), mul(_c(ctx, 3 * _TANH_K), mul(x, x))))
        s = ctx.op("Sub", [_c(ctx, 1.0), mul(t, t)])
        return add(mul(_c(ctx, 0.5), add(_c(ctx, 1.0), t)), mul(mul(_c(ctx, 0.5), x),
                                                                mul(s, du)))
    e = ctx.op("Exp", [mul(_c(ctx, -0.5), mul(x, x))])
    return add(_phi(ctx, x), mul(mul(x, _c(ctx, _INV_SQRT_2PI)), e))


def _kept(ctx: Context, op_type: str, x: str, axes: Sequence[int]) -> str:
    return ctx.reduce(op_type, x, axes, keepdims=True)


def _lse_kept(ctx: Context, x: str, axes: Sequence[int]) -> str:
    """log(sum(exp(x))) over ``axes``, kept as length-1 axes; shifted by the maximum."""
    m = _kept(ctx, "ReduceMax", x, axes)
    s = _kept(ctx, "ReduceSum", ctx.op("Exp", [ctx.op("Sub", [x, m])]), axes)
    return ctx.op("Add", [m, ctx.op("Log", [s])])


def _softmax_of(ctx: Context, x: str, axes: Sequence[int]) -> str:
    e = ctx.op("Exp", [ctx.op("Sub", [x, _kept(ctx, "ReduceMax", x, axes)])])
    return ctx.op("Div", [e, _kept(ctx, "ReduceSum", e, axes)])


def _softmax(ctx: Context) -> str:
    return _softmax_of(ctx, ctx.input(0), ctx.axes(ctx.attrs["axis"]))


def _log_softmax(ctx: Context) -> str:
    x = ctx.input(0)
    return ctx.op("Sub", [x, _lse_kept(ctx, x, ctx.axes(ctx.attrs["axis"]))])


def _logsumexp(ctx: Context) -> str:
    x, axes = ctx.input(0), ctx.axes(ctx.attrs["axis"])
    lse = _lse_kept(ctx, x, axes)
    if ctx.attrs["keepdims"] or not axes:
        return lse
    return ctx.op("Squeeze", [lse, ctx.ints(axes)])


def _class_axis(ctx: Context, logits: int) -> int:
    return ctx.axes(ctx.attrs["axis"], ctx.rank(logits))[0]


def _integral(ctx: Context, i: int) -> bool:
    return ctx.dtype(i).kind in "biu"


def _one_hot_like(ctx: Context, labels: int, logits: int, ax: int, dtype: Any) -> str:
    """Integer labels as one-hot rows along axis ``ax`` of the logits, in ``dtype``."""
    shape = ctx.shape(logits)
    n = None if shape is None else shape[ax]
    if n is None:
        raise ctx.fail("integer labels need the static number of classes")
    idx = ctx.op("Unsqueeze", [ctx.input(labels, "int64"), ctx.ints([ax])])
    rank = ctx.rank(logits)
    classes = ctx.ints(range(n))
    classes = ctx.op("Reshape", [classes, ctx.ints([-1] + [1] * (rank - ax - 1))])
    return ctx.cast(ctx.op("Equal", [idx, classes]), None, dtype)


def _softmax_cross_entropy(ctx: Context) -> str:
    z, ax = ctx.input(0), _class_axis(ctx, 0)
    logp = ctx.op("Sub", [z, _lse_kept(ctx, z, [ax])])
    y = _one_hot_like(ctx, 1, 0, ax, ctx.out_dtype) if _integral(ctx, 1) else ctx.input(1)
    picked = ctx.reduce("ReduceSum", ctx.op("Mul", [y, logp]), [ax], keepdims=False)
    return ctx.op("Neg", [picked])


def _sce_grad(ctx: Context) -> str:
    z, ax = ctx.input(1), _class_axis(ctx, 1)
    ge = ctx.op("Unsqueeze", [ctx.input(0), ctx.ints([ax])])
    s = _softmax_of(ctx, z, [ax])
    if _integral(ctx, 2):
        diff = ctx.op("Sub", [s, _one_hot_like(ctx, 2, 1, ax, ctx.out_dtype)])
    else:
        y = ctx.input(2)
        diff = ctx.op("Sub", [ctx.op("Mul", [s, _kept(ctx, "ReduceSum", y, [ax])]), y])
    return ctx.op("Mul", [ge, diff])


def _class_probs(ctx: Context) -> str:
    ax = _class_axis(ctx, 1)
    if _integral(ctx, 0):
        return _one_hot_like(ctx, 0, 1, ax, ctx.out_dtype)
    return ctx.op("Identity", [ctx.input(0)])


def _float_only(ctx: Context) -> str:
    if _integral(ctx, 1):
        return _c(ctx, 0.0)
    return ctx.op("Identity", [ctx.input(0)])


def _one_hot(ctx: Context) -> str:
    n = int(ctx.attrs["num_classes"])
    idx = ctx.op("Unsqueeze", [ctx.input(0, "int64"), ctx.ints([-1])])
    return ctx.cast(ctx.op("Equal", [idx, ctx.ints(range(n))]), None, ctx.out_dtype)


def _layer_norm(ctx: Context) -> str:
    x, rank = ctx.input(0), ctx.rank(0)
    ns = ctx.attrs["normalized_shape"]
    k = 1 if ns is None or isinstance(ns, int) else len(tuple(ns))
    axes = list(range(rank - k, rank))
    d = ctx.op("Sub", [x, _kept(ctx, "ReduceMean", x, axes)])
    var = _kept(ctx, "ReduceMean", ctx.op("Mul", [d, d]), axes)
    std = ctx.op("Sqrt", [ctx.op("Add", [var, _c(ctx, ctx.attrs["eps"])])])
    return ctx.op("Div", [d, std])


def _ints(value: Any, nd: int) -> list[int]:
    return [int(value)] * nd if isinstance(value, int) else [int(v) for v in value]


def _conv(nd: int) -> Callable[[Context], str]:
    def convert(ctx: Context) -> str:
        a = ctx.attrs
        pads = _ints(a["padding"], nd)
        return ctx.op("Conv", [ctx.input(0), ctx.input(1)], strides=_ints(a["stride"], nd),
                      pads=pads + pads, dilations=_ints(a["dilation"], nd),
                      group=int(a["groups"]))

    return convert


def _pool(nd: int, op_type: str) -> Callable[[Context], str]:
    def convert(ctx: Context) -> str:
        a = ctx.attrs
        kernel = _ints(a["kernel_size"], nd)
        stride = kernel if a["stride"] is None else _ints(a["stride"], nd)
        pads = _ints(a["padding"], nd)
        extra: dict[str, Any] = {"count_include_pad": 1} if op_type == "AveragePool" else {}
        return ctx.op(op_type, [ctx.input(0)], kernel_shape=kernel, strides=stride,
                      pads=pads + pads, **extra)

    return convert


def _spatial(ctx: Context, i: int) -> list[int]:
    shape = ctx.shape(i)
    if shape is None or None in shape:
        raise ctx.fail(f"input {i} needs a static shape, not {shape}")
    return [int(d) for d in shape[2:] if d is not None]


def _transposed(ctx: Context, g: str, w: str, like: int, k: Sequence[int],
                geometry: tuple[list[int], list[int], list[int]], group: int) -> str:
    """ConvTranspose of ``g`` by ``w`` back to the spatial size of input ``like``."""
    s, p, d = geometry
    size = _spatial(ctx, like)
    covered = [si * (o - 1) + (ki - 1) * di + 1 - 2 * pi for si, o, ki, di, pi in
               zip(s, _spatial(ctx, 0), k, d, p, strict=True)]
    return ctx.op("ConvTranspose", [g, w], strides=s, pads=p + p, dilations=d, group=group,
                  output_padding=[n - c for n, c in zip(size, covered, strict=True)])


def _conv_geometry(ctx: Context, nd: int) -> tuple[list[int], list[int], list[int]]:
    a = ctx.attrs
    return _ints(a["stride"], nd), _ints(a["padding"], nd), _ints(a["dilation"], nd)


def _conv_input_grad(ctx: Context) -> str:
    nd = ctx.rank(2) - 2
    k = _spatial(ctx, 1)
    return _transposed(ctx, ctx.input(0), ctx.input(1), 2, k, _conv_geometry(ctx, nd),
                       int(ctx.attrs["groups"]))


def _conv_weight_grad(ctx: Context) -> str:
    """dW[m, c, k] = sum over n, o of g[n, m, o] x[n, c, k d + o s]: a convolution of x
    (channels as the batch) by g, stride and dilation swapped, cut to the kernel."""
    nd = ctx.rank(0) - 2
    s, p, d = _conv_geometry(ctx, nd)
    groups = int(ctx.attrs["groups"])
    k = _spatial(ctx, 2)
    wshape = ctx.shape(2)
    assert wshape is not None
    og, cg = int(wshape[0] or 0) // groups, int(wshape[1] or 0)
    perm = [1, 0, *range(2, nd + 2)]
    x, g = ctx.input(0), ctx.input(1)
    parts = []
    for gi in range(groups):
        xg = _channels(ctx, x, gi * cg, (gi + 1) * cg)
        gg = _channels(ctx, g, gi * og, (gi + 1) * og)
        r = ctx.op("Conv", [ctx.op("Transpose", [xg], perm=perm),
                            ctx.op("Transpose", [gg], perm=perm)],
                   strides=d, dilations=s, pads=p + p)
        r = ctx.op("Slice", [r, ctx.ints([0] * nd), ctx.ints(k), ctx.ints(range(2, nd + 2))])
        parts.append(ctx.op("Transpose", [r], perm=perm))
    return parts[0] if groups == 1 else ctx.op("Concat", parts, axis=0)


def _channels(ctx: Context, x: str, start: int, stop: int) -> str:
    return ctx.op("Slice", [x, ctx.ints([start]), ctx.ints([stop]), ctx.ints([1])])


def _pool_geometry(ctx: Context) -> tuple[list[int], list[int], list[int]]:
    a = ctx.attrs
    nd = ctx.rank(1) - 2
    kernel = _ints(a["kernel_size"], nd)
    stride = kernel if a["stride"] is None else _ints(a["stride"], nd)
    return kernel, stride, _ints(a["padding"], nd)


def _argmax_indices(ctx: Context, x: str) -> str:
    """Where each window's maximum of x lies, as flat indices into x (MaxPool's)."""
    k, s, p = _pool_geometry(ctx)
    return ctx.op_n("MaxPool", [x], 2, kernel_shape=k, strides=s, pads=p + p)[1]


def _flat(ctx: Context, x: str) -> str:
    return ctx.op("Reshape", [x, ctx.ints([-1])])


def _max_pool_grad(ctx: Context) -> str:
    x = ctx.input(1)
    idx = _flat(ctx, _argmax_indices(ctx, x))
    zeros = ctx.op("Mul", [_flat(ctx, x), _c(ctx, 0.0)])
    out = ctx.op("ScatterElements", [zeros, idx, _flat(ctx, ctx.input(0))], axis=0,
                 reduction="add")
    return ctx.op("Reshape", [out, ctx.shape_of(x)])


def _max_pool_pick(ctx: Context) -> str:
    idx = _argmax_indices(ctx, ctx.input(1))
    return ctx.op("Gather", [_flat(ctx, ctx.input(0)), idx], axis=0)


def _avg_pool_grad(ctx: Context) -> str:
    k, s, p = _pool_geometry(ctx)
    shape = ctx.shape(1)
    channels = None if shape is None else shape[1]
    if channels is None:
        raise ctx.fail("the input needs a static number of channels")
    w = ctx.constant(np.full((channels, 1, *k), 1.0 / math.prod(k)), ctx.out_dtype)
    return _transposed(ctx, ctx.input(0), w, 1, k, (s, p, [1] * len(k)), channels)


CONVERTERS: Final[dict[str, Callable[[Context], str]]] = {
    "relu": _relu,
    "sigmoid": _sigmoid,
    "softplus": _softplus,
    "silu": _silu,
    "log_sigmoid": _log_sigmoid,
    "elu": _elu,
    "leaky_relu": _leaky_relu,
    "gelu": _gelu,
    "gelu_grad": _gelu_grad,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "logsumexp": _logsumexp,
    "softmax_cross_entropy": _softmax_cross_entropy,
    "sce_grad": _sce_grad,
    "class_probs": _class_probs,
    "float_only": _float_only,
    "one_hot": _one_hot,
    "layer_norm": _layer_norm,
    "conv1d": _conv(1),
    "conv2d": _conv(2),
    "max_pool1d": _pool(1, "MaxPool"),
    "max_pool2d": _pool(2, "MaxPool"),
    "avg_pool1d": _pool(1, "AveragePool"),
    "avg_pool2d": _pool(2, "AveragePool"),
    "conv_input_grad": _conv_input_grad,
    "conv_weight_grad": _conv_weight_grad,
    "max_pool_grad": _max_pool_grad,
    "max_pool_pick": _max_pool_pick,
    "avg_pool_grad": _avg_pool_grad,
}


@autodag.hookimpl
def autodag_onnx_converters() -> dict[str, Callable[[Context], str]]:
    """The ONNX converters of the nn ops."""
    return dict(CONVERTERS)
