"""Convolutions conv1d (N, C, L) and conv2d (N, C, H, W), as torch.nn.functional's
(cross-correlation; stride, padding, dilation, groups), without bias: add it by
broadcasting (``conv2d(x, w) + b[:, None, None]``).

The forward is an im2col: a strided window view of the padded input contracted with
the weight by one einsum. The gradients are two helper ops, ``conv_input_grad`` (the
transposed convolution) and ``conv_weight_grad``; with the convolution they are closed
under differentiation (each is bilinear, and each one's gradients are the other two), so
every order of derivative is exact.

NumPy arrays take that path; another library's arrays the forms of
:mod:`._xp_windows` (one strided slice and matrix product per kernel position), in the
array-API standard's functions, so every op runs on any backend (``array_api=True``).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from autodag import REQUIRED, OpDef, Sample

from ._windows import foreign_namespace, ints, on, out_size, pad, unwindow, windows
from ._xp_windows import Geometry, xp_conv, xp_conv_input_grad, xp_conv_weight_grad, xp_float

__all__ = ["CONV_OPS"]

_Rng = np.random.Generator
_CONV: Final = {1: "conv1d", 2: "conv2d"}


def _float(a: Any) -> np.ndarray[Any, Any]:
    x = np.asarray(a)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def _letters(nd: int) -> tuple[str, str]:
    """einsum letters of the output's and the kernel's spatial axes."""
    return "xyz"[:nd], "uvw"[:nd]


def _geometry(op: str, x: Any, w: Any, nd: int, stride: Any, padding: Any, dilation: Any,
              groups: Any) -> Geometry:
    """The attributes as tuples, checked against the shapes of input ``x`` (N, C, *size)
    and weight ``w`` (O, C / groups, *kernel); and the output's spatial size."""
    if len(x.shape) != nd + 2 or len(w.shape) != nd + 2:
        raise ValueError(f"{op}: input and weight must have {nd + 2} axes, got shapes "
                         f"{tuple(x.shape)} and {tuple(w.shape)}")
    s, p, d = (ints(op, n, v, nd) for n, v in
               (("stride", stride), ("padding", padding), ("dilation", dilation)))
    g = int(groups)
    c, (o, cg) = x.shape[1], w.shape[:2]
    if g < 1 or c != g * cg or o % g:
        raise ValueError(f"{op}: input of shape {tuple(x.shape)} and weight of shape "
                         f"{tuple(w.shape)} do not fit groups={groups!r}: the input needs "
                         "groups * weight.shape[1] channels and groups must divide "
                         "weight.shape[0]")
    kernel = tuple(w.shape[2:])
    return s, p, d, out_size(op, tuple(x.shape[2:]), kernel, s, p, d)


def _grouped_windows(x: np.ndarray[Any, Any], kernel: tuple[int, ...], s: tuple[int, ...],
                     p: tuple[int, ...], d: tuple[int, ...], groups: int
                     ) -> np.ndarray[Any, Any]:
    win = windows(pad(x, p), kernel, s, d)
    return win.reshape((win.shape[0], groups, win.shape[1] // groups, *win.shape[2:]))


def _conv(nd: int) -> Any:
    op = _CONV[nd]

    def forward(input: Any, weight: Any, stride: Any, padding: Any, dilation: Any,
                groups: Any) -> Any:
        xp = foreign_namespace(input, weight)
        if xp is not None:
            x, w = xp_float(xp, on(xp, input)), xp_float(xp, on(xp, weight))
            geometry = _geometry(op, x, w, nd, stride, padding, dilation, groups)
            return xp_conv(xp, x, w, geometry, int(groups))
        x, w = _float(input), _float(weight)
        s, p, d, _ = _geometry(op, x, w, nd, stride, padding, dilation, groups)
        g = int(groups)
        win = _grouped_windows(x, tuple(w.shape[2:]), s, p, d, g)
        wg = w.reshape((g, w.shape[0] // g, *w.shape[1:]))
        o, k = _letters(nd)
        r = np.einsum(f"ngc{o}{k},goc{k}->ngo{o}", win, wg, optimize=True)
        return r.reshape((x.shape[0], w.shape[0], *r.shape[3:]))

    return forward


def _conv_input_grad(grad_output: Any, weight: Any, input: Any, stride: Any, padding: Any,
                     dilation: Any, groups: Any) -> Any:
    """The gradient of a convolution for its input: the transposed convolution."""
    xp = foreign_namespace(grad_output, weight, input)
    if xp is not None:
        gy, w, x = xp_float(xp, on(xp, grad_output)), xp_float(xp, on(xp, weight)), input
    else:
        gy, w, x = _float(grad_output), _float(weight), np.asarray(input)
    nd = _helper_rank("conv_input_grad", x, stride, padding, dilation)
    s, p, d, out = _geometry("conv_input_grad", x, w, nd, stride, padding, dilation, groups)
    _check_out("conv_input_grad", gy, x.shape[0], w.shape[0], out)
    g = int(groups)
    if xp is not None:
        return xp_conv_input_grad(xp, gy, w, tuple(x.shape[2:]), (s, p, d, out), g)
    gg = gy.reshape((gy.shape[0], g, gy.shape[1] // g, *gy.shape[2:]))
    wg = w.reshape((g, w.shape[0] // g, *w.shape[1:]))
    o, k = _letters(nd)
    parts = np.einsum(f"ngo{o},goc{k}->ngc{o}{k}", gg, wg, optimize=True)
    parts = parts.reshape((gy.shape[0], x.shape[1], *parts.shape[3:]))
    return unwindow(parts, tuple(x.shape[2:]), s, p, d)


def _conv_weight_grad(input: Any, grad_output: Any, weight: Any, stride: Any, padding: Any,
                      dilation: Any, groups: Any) -> Any:
    """The gradient of a convolution for its weight."""
    xp = foreign_namespace(input, grad_output, weight)
    if xp is not None:
        x, gy, w = xp_float(xp, on(xp, input)), xp_float(xp, on(xp, grad_output)), weight
    else:
        x, gy, w = _float(input), _float(grad_output), np.asarray(weight)
    nd = _helper_rank("conv_weight_grad", x, stride, padding, dilation)
    s, p, d, out = _geometry("conv_weight_grad", x, w, nd, stride, padding, dilation, groups)
    _check_out("conv_weight_grad", gy, x.shape[0], w.shape[0], out)
    g = int(groups)
    if xp is not None:
        return xp_conv_weight_grad(xp, x, gy, tuple(w.shape[2:]), (s, p, d, out), g)
    win = _grouped_windows(x, tuple(w.shape[2:]), s, p, d, g)
    gg = gy.reshape((gy.shape[0], g, gy.shape[1] // g, *gy.shape[2:]))
    o, k = _letters(nd)
    r = np.einsum(f"ngo{o},ngc{o}{k}->goc{k}", gg, win, optimize=True)
    return r.reshape(w.shape).astype(np.result_type(x, gy), copy=False)


def _helper_rank(op: str, x: Any, *attrs: Any) -> int:
    """The spatial rank of a helper's input; its attributes must be tuples of that length,
    which is how its backward rule tells conv1d from conv2d."""
    nd = len(x.shape) - 2
    if not all(isinstance(a, tuple) and len(a) == nd for a in attrs):
        raise ValueError(f"{op}: stride, padding and dilation must be tuples of {nd} ints, "
                         f"got {attrs}")
    return nd


def _check_out(op: str, gy: Any, n: int, channels: int, out: tuple[int, ...]) -> None:
    if tuple(gy.shape) != (n, channels, *out):
        raise ValueError(f"{op}: grad_output of shape {tuple(gy.shape)} is not the "
                         f"convolution's output shape {(n, channels, *out)}")


# --- backward rules: the three ops' gradients are each other ------------------------
def _attrs(nd: int, stride: Any, padding: Any, dilation: Any, groups: Any) -> dict[str, Any]:
    """The helpers' attributes: tuples, whose length tells the spatial rank."""
    op = _CONV[nd]
    return {"stride": ints(op, "stride", stride, nd), "padding": ints(op, "padding", padding, nd),
            "dilation": ints(op, "dilation", dilation, nd), "groups": int(groups)}


def _conv_vjps(nd: int) -> tuple[Any, Any]:
    def input_vjp(xp: Any, g: Any, out: Any, input: Any, weight: Any, stride: Any,
                  padding: Any, dilation: Any, groups: Any) -> Any:
        return xp.conv_input_grad(g, weight, input, **_attrs(nd, stride, padding, dilation,
                                                              groups))

    def weight_vjp(xp: Any, g: Any, out: Any, input: Any, weight: Any, stride: Any,
                   padding: Any, dilation: Any, groups: Any) -> Any:
        return xp.conv_weight_grad(input, g, weight, **_attrs(nd, stride, padding, dilation,
                                                               groups))

    return input_vjp, weight_vjp


def _helper_conv(xp: Any, stride: tuple[int, ...]) -> Any:
    """The convolution op of the helpers' spatial rank."""
    return getattr(xp, _CONV[len(stride)])


def _input_grad_vjps() -> tuple[Any, Any, None]:
    def g_vjp(xp: Any, h: Any, out: Any, gy: Any, weight: Any, input: Any, stride: Any,
              padding: Any, dilation: Any, groups: Any) -> Any:
        return _helper_conv(xp, stride)(h, weight, stride=stride, padding=padding,
                                        dilation=dilation, groups=groups)

    def weight_vjp(xp: Any, h: Any, out: Any, gy: Any, weight: Any, input: Any, stride: Any,
                   padding: Any, dilation: Any, groups: Any) -> Any:
        return xp.conv_weight_grad(h, gy, weight, stride=stride, padding=padding,
                                   dilation=dilation, groups=groups)

    return g_vjp, weight_vjp, None


def _weight_grad_vjps() -> tuple[Any, Any, None]:
    def input_vjp(xp: Any, h: Any, out: Any, input: Any, gy: Any, weight: Any, stride: Any,
                  padding: Any, dilation: Any, groups: Any) -> Any:
        return xp.conv_input_grad(gy, h, input, stride=stride, padding=padding,
                                  dilation=dilation, groups=groups)

    def g_vjp(xp: Any, h: Any, out: Any, input: Any, gy: Any, weight: Any, stride: Any,
              padding: Any, dilation: Any, groups: Any) -> Any:
        return _helper_conv(xp, stride)(input, h, stride=stride, padding=padding,
                                        dilation=dilation, groups=groups)

    return input_vjp, g_vjp, None


# --- samples ------------------------------------------------------------------------
def _cases(nd: int) -> list[tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]]:
    """(input shape, weight shape, attributes), small enough for second-order checks."""
    sp = (5,) * nd
    return [((2, 2, *sp), (3, 2) + (3,) * nd, {}),
            ((1, 2, *sp), (2, 2) + (2,) * nd, {"stride": 2, "padding": 1}),
            ((1, 2, *sp), (2, 2) + (2,) * nd, {"dilation": 2, "padding": (1,) * nd}),
            ((1, 4, *sp), (2, 2) + (2,) * nd, {"groups": 2, "stride": (1,) * (nd - 1) + (2,)})]


def _conv_samples(nd: int) -> Any:
    def samples(rng: _Rng) -> list[Sample]:
        return [Sample((rng.standard_normal(xs), rng.standard_normal(ws)), attrs)
                for xs, ws, attrs in _cases(nd)]

    return samples


def _helper_samples(which: str) -> Any:
    def samples(rng: _Rng) -> list[Sample]:
        out = []
        for nd in (1, 2):
            for xs, ws, attrs in _cases(nd)[:3 if nd == 2 else 4]:
                x, w = rng.standard_normal(xs), rng.standard_normal(ws)
                full = _attrs(nd, **{"stride": 1, "padding": 0, "dilation": 1, "groups": 1,
                                     **attrs})
                gy = rng.standard_normal(_conv(nd)(x, w, **full).shape)
                inputs = (gy, w, x) if which == "input" else (x, gy, w)
                out.append(Sample(inputs, full))
        return out

    return samples


def _conv_op(nd: int) -> OpDef:
    layout = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
    return OpDef(
        name=_CONV[nd], arity=2, forward=_conv(nd), backward=_conv_vjps(nd),
        attributes={"stride": 1, "padding": 0, "dilation": 1, "groups": 1},
        input_names=("input", "weight"), samples=_conv_samples(nd), array_api=True,
        doc=f"torch.nn.functional.{_CONV[nd]} of an input {layout} and a weight "
            f"(out_channels, in_channels / groups, *kernel), without bias (add it by "
            f"broadcasting); ints or tuples for stride, padding, dilation.")


_HELPER_ATTRS: Final = {"stride": REQUIRED, "padding": REQUIRED, "dilation": REQUIRED,
                        "groups": 1}

CONV_OPS: Final[tuple[OpDef, ...]] = (
    _conv_op(1),
    _conv_op(2),
    OpDef(name="conv_input_grad", arity=3, forward=_conv_input_grad,
          backward=_input_grad_vjps(), attributes=_HELPER_ATTRS,
          input_names=("grad_output", "weight", "input"), samples=_helper_samples("input"),
          array_api=True,
          doc="The transposed convolution: the gradient of conv1d/conv2d for their input "
              "(shaped like input, whose values are not read; tuple attributes)."),
    OpDef(name="conv_weight_grad", arity=3, forward=_conv_weight_grad,
          backward=_weight_grad_vjps(), attributes=_HELPER_ATTRS,
          input_names=("input", "grad_output", "weight"), samples=_helper_samples("weight"),
          array_api=True,
          doc="The gradient of conv1d/conv2d for their weight (shaped like weight, whose "
              "values are not read; tuple attributes)."),
)
