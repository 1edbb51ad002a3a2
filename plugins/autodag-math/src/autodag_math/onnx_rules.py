"""ONNX converters of the math ops (``autodag_onnx_converters``); no import of onnx here.

Functions ONNX lacks are written from the ones it has (``arctan2`` from Atan and the
quadrant, ``mod`` as a - floor(a / b) * b, ``log2`` as log(x) / log 2...), each valid
everywhere NumPy's is. ``fmax``/``fmin`` skip NaN as NumPy's do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import numpy as np

import autodag

if TYPE_CHECKING:
    from autodag.onnx import Context

__all__ = ["CONVERTERS", "autodag_onnx_converters"]

Converter = Callable[["Context"], str]


def _c(ctx: Context, value: float) -> str:
    return ctx.constant(value, ctx.out_dtype)


def _same(op_type: str) -> Converter:
    def convert(ctx: Context) -> str:
        return ctx.elementwise(op_type)

    return convert


def _compare(op_type: str, negate: bool = False) -> Converter:
    def convert(ctx: Context) -> str:
        out = ctx.compare(op_type)
        return ctx.op("Not", [out]) if negate else out

    return convert


def _scaled(op_type: str | None, factor: float, after: bool = False) -> Converter:
    """x * factor (op_type None), op(x) * factor (after), or op(x * factor)."""

    def convert(ctx: Context) -> str:
        x = ctx.input(0)
        if op_type is None:
            return ctx.op("Mul", [x, _c(ctx, factor)])
        if after:
            return ctx.op("Mul", [ctx.op(op_type, [x]), _c(ctx, factor)])
        return ctx.op(op_type, [ctx.op("Mul", [x, _c(ctx, factor)])])

    return convert


def _square(ctx: Context) -> str:
    x = ctx.input(0)
    return ctx.op("Mul", [x, x])


def _exp2(ctx: Context) -> str:
    return ctx.op("Pow", [_c(ctx, 2.0), ctx.input(0)])


def _expm1(ctx: Context) -> str:
    return ctx.op("Sub", [ctx.op("Exp", [ctx.input(0)]), _c(ctx, 1.0)])


def _log1p(ctx: Context) -> str:
    return ctx.op("Log", [ctx.op("Add", [_c(ctx, 1.0), ctx.input(0)])])


def _signed(ctx: Context, x: str, magnitude: str) -> str:
    return ctx.op("Mul", [ctx.op("Sign", [x]), magnitude])


def _trunc(ctx: Context) -> str:
    x = ctx.input(0)
    return _signed(ctx, x, ctx.op("Floor", [ctx.op("Abs", [x])]))


def _cbrt(ctx: Context) -> str:
    x = ctx.input(0)
    return _signed(ctx, x, ctx.op("Pow", [ctx.op("Abs", [x]), _c(ctx, 1.0 / 3.0)]))


def _sinc(ctx: Context) -> str:
    x = ctx.input(0)
    px = ctx.op("Mul", [x, _c(ctx, math.pi)])
    zero = ctx.op("Equal", [x, _c(ctx, 0.0)])
    safe = ctx.op("Where", [zero, _c(ctx, 1.0), px])
    ratio = ctx.op("Div", [ctx.op("Sin", [safe]), safe])
    return ctx.op("Where", [zero, _c(ctx, 1.0), ratio])


def _round(ctx: Context) -> str:
    d = int(ctx.attrs["decimals"])
    x = ctx.input(0)
    if d == 0:
        return ctx.op("Round", [x])
    if ctx.out_dtype.kind != "f":
        raise ctx.fail("round with decimals of an integer array has no ONNX form here")
    # As NumPy: scale, round half to even, scale back.
    if d > 0:
        f = _c(ctx, 10.0 ** d)
        return ctx.op("Div", [ctx.op("Round", [ctx.op("Mul", [x, f])]), f])
    f = _c(ctx, 10.0 ** -d)
    return ctx.op("Mul", [ctx.op("Round", [ctx.op("Div", [x, f])]), f])


def _isfinite(ctx: Context) -> str:
    x = ctx.inputs[0]
    if ctx.dtype(0).kind != "f":  # integers are all finite
        return ctx.op("Expand", [ctx.constant(True), ctx.shape_of(x)])
    bad = ctx.op("Or", [ctx.op("IsNaN", [x]), ctx.op("IsInf", [x])])
    return ctx.op("Not", [bad])


def _classify(op_type: str) -> Converter:
    def convert(ctx: Context) -> str:
        return ctx.op(op_type, [ctx.input(0, ctx.dtype(0))])

    return convert


def _nan_to_num(ctx: Context) -> str:
    x, dt = ctx.input(0), ctx.out_dtype
    if dt.kind != "f":
        return ctx.op("Identity", [x])
    a = ctx.attrs
    info = np.finfo(dt)
    pos = info.max if a["posinf"] is None else a["posinf"]
    neg = info.min if a["neginf"] is None else a["neginf"]
    out = ctx.op("Where", [ctx.op("IsInf", [x], detect_negative=0), _c(ctx, pos), x])
    out = ctx.op("Where", [ctx.op("IsInf", [x], detect_positive=0), _c(ctx, neg), out])
    return ctx.op("Where", [ctx.op("IsNaN", [x]), _c(ctx, a["nan"]), out])


def _arctan2(ctx: Context) -> str:
    y, x = ctx.input(0), ctx.input(1)
    zero, pi = _c(ctx, 0.0), _c(ctx, math.pi)
    base = ctx.op("Atan", [ctx.op("Div", [y, x])])
    y_neg = ctx.op("Less", [y, zero])
    turn = ctx.op("Where", [y_neg, ctx.op("Neg", [pi]), pi])
    left = ctx.op("Add", [base, turn])
    half = ctx.op("Where", [y_neg, _c(ctx, -math.pi / 2), _c(ctx, math.pi / 2)])
    on_axis = ctx.op("Where", [ctx.op("Equal", [y, zero]), ctx.op("Mul", [y, zero]), half])
    out = ctx.op("Where", [ctx.op("Less", [x, zero]), left, base])
    return ctx.op("Where", [ctx.op("Equal", [x, zero]), on_axis, out])


def _hypot(ctx: Context) -> str:
    a, b = ctx.input(0), ctx.input(1)
    return ctx.op("Sqrt", [ctx.op("Add", [ctx.op("Mul", [a, a]), ctx.op("Mul", [b, b])])])


def _logaddexp(base2: bool) -> Converter:
    def convert(ctx: Context) -> str:
        a, b = ctx.input(0), ctx.input(1)
        m = ctx.op("Max", [a, b])
        ln2 = _c(ctx, math.log(2.0))
        terms = []
        for v in (a, b):
            d = ctx.op("Sub", [v, m])
            terms.append(ctx.op("Exp", [ctx.op("Mul", [d, ln2]) if base2 else d]))
        s = ctx.op("Log", [ctx.op("Add", terms)])
        return ctx.op("Add", [m, ctx.op("Div", [s, ln2]) if base2 else s])

    return convert


def _fmax(op_type: str) -> Converter:
    def convert(ctx: Context) -> str:
        a, b = ctx.input(0), ctx.input(1)
        both = ctx.op(op_type, [a, b])
        if ctx.out_dtype.kind != "f":
            return both
        out = ctx.op("Where", [ctx.op("IsNaN", [b]), a, both])
        return ctx.op("Where", [ctx.op("IsNaN", [a]), b, out])

    return convert


def _mod(ctx: Context) -> str:
    a, b = ctx.input(0), ctx.input(1)
    if ctx.out_dtype.kind != "f":
        return ctx.op("Mod", [a, b], fmod=0)
    q = ctx.op("Floor", [ctx.op("Div", [a, b])])
    return ctx.op("Sub", [a, ctx.op("Mul", [q, b])])


def _where(ctx: Context) -> str:
    cond = ctx.input(0, bool)
    return ctx.op("Where", [cond, ctx.input(1), ctx.input(2)])


def _clip(ctx: Context) -> str:
    low = ctx.op("Max", [ctx.input(0), ctx.input(1)])
    return ctx.op("Min", [low, ctx.input(2)])


_UNARY: Final = {
    "abs": "Abs", "arccos": "Acos", "arccosh": "Acosh", "arcsin": "Asin",
    "arcsinh": "Asinh", "arctan": "Atan", "arctanh": "Atanh", "ceil": "Ceil", "cos": "Cos",
    "cosh": "Cosh", "exp": "Exp", "floor": "Floor", "log": "Log", "sign": "Sign",
    "sin": "Sin", "sinh": "Sinh", "sqrt": "Sqrt", "tan": "Tan", "tanh": "Tanh",
    "reciprocal": "Reciprocal",
}
_COMPARE: Final = {
    "equal": "Equal", "greater": "Greater", "greater_equal": "GreaterOrEqual",
    "less": "Less", "less_equal": "LessOrEqual",
}

CONVERTERS: Final[dict[str, Converter]] = {
    **{name: _same(op) for name, op in _UNARY.items()},
    **{name: _compare(op) for name, op in _COMPARE.items()},
    "not_equal": _compare("Equal", negate=True),
    "maximum": _same("Max"),
    "minimum": _same("Min"),
    "fmax": _fmax("Max"),
    "fmin": _fmax("Min"),
    "square": _square,
    "exp2": _exp2,
    "expm1": _expm1,
    "log1p": _log1p,
    "log2": _scaled("Log", 1.0 / math.log(2.0), after=True),
    "log10": _scaled("Log", 1.0 / math.log(10.0), after=True),
    "deg2rad": _scaled(None, math.pi / 180.0),
    "radians": _scaled(None, math.pi / 180.0),
    "rad2deg": _scaled(None, 180.0 / math.pi),
    "degrees": _scaled(None, 180.0 / math.pi),
    "trunc": _trunc,
    "cbrt": _cbrt,
    "sinc": _sinc,
    "round": _round,
    "isnan": _classify("IsNaN"),
    "isinf": _classify("IsInf"),
    "isfinite": _isfinite,
    "nan_to_num": _nan_to_num,
    "arctan2": _arctan2,
    "hypot": _hypot,
    "logaddexp": _logaddexp(False),
    "logaddexp2": _logaddexp(True),
    "mod": _mod,
    "remainder": _mod,
    "where": _where,
    "clip": _clip,
}


@autodag.hookimpl
def autodag_onnx_converters() -> dict[str, Converter]:
    """The ONNX converters of the math ops."""
    return dict(CONVERTERS)
