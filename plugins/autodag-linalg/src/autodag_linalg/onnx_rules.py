"""ONNX converters of the linalg ops (``autodag_onnx_converters``); no import of onnx here.

Products are ONNX Einsum with the subscripts the ops themselves use; diagonals and
traces an Einsum over a sliced square; triangles Trilu; the determinant Det, and
``linalg_slogdet`` log|Det| (which overflows where Det does, unlike NumPy's). The helpers
that depend on shapes only (``linalg_einsum_mask``, ``linalg_diag_selector``,
``linalg_tri_mask``) become constants computed from the static shape. Standard ONNX has
no inverse, solve, decomposition or eigenvalue op, so ``linalg_inv``, ``linalg_solve``,
``linalg_pinv``, ``linalg_cholesky``, ``linalg_qr``, ``linalg_qr_q``, ``linalg_eigh``,
``linalg_eigh_vectors``, ``linalg_eigvalsh``, ``linalg_svd``, ``linalg_svd_u``,
``linalg_svd_vh`` and ``linalg_svdvals`` have no converter, nor have
``linalg_matrix_power`` with a negative power and ``linalg_norm`` of the singular values
(ord 2, -2 and 'nuc' of matrices).
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import numpy as np

import autodag

from .products import _dot_subs, _inner_subs, _tensordot_subs

if TYPE_CHECKING:
    from autodag.onnx import Context

__all__ = ["CONVERTERS", "autodag_onnx_converters"]

Converter = Callable[["Context"], str]
_L: Final = string.ascii_letters


def _static(ctx: Context, i: int) -> tuple[int, ...]:
    shape = ctx.shape(i)
    if shape is None or None in shape:
        raise ctx.fail(f"input {i} needs a static shape, not {shape}")
    return tuple(int(d) for d in shape if d is not None)


def _einsum_of(subs: Callable[[int, int], str]) -> Converter:
    def convert(ctx: Context) -> str:
        eq = subs(ctx.rank(0), ctx.rank(1))
        return ctx.op("Einsum", [ctx.input(0), ctx.input(1)], equation=eq)

    return convert


def _tensordot(ctx: Context) -> str:
    eq = _tensordot_subs(ctx.rank(0), ctx.rank(1), ctx.attrs["axes"])
    return ctx.op("Einsum", [ctx.input(0), ctx.input(1)], equation=eq)


def _flat(ctx: Context, i: int) -> str:
    return ctx.op("Reshape", [ctx.input(i), ctx.ints([-1])])


def _vdot(ctx: Context) -> str:
    return ctx.op("Einsum", [_flat(ctx, 0), _flat(ctx, 1)], equation="i,i->")


def _outer(ctx: Context) -> str:
    return ctx.op("Einsum", [_flat(ctx, 0), _flat(ctx, 1)], equation="i,j->ij")


def _kron(ctx: Context) -> str:
    sa, sb = _static(ctx, 0), _static(ctx, 1)
    r = max(len(sa), len(sb))
    sa, sb = (1,) * (r - len(sa)) + sa, (1,) * (r - len(sb)) + sb
    a = ctx.op("Reshape", [ctx.input(0), ctx.ints(sa)])
    b = ctx.op("Reshape", [ctx.input(1), ctx.ints(sb)])
    la, lb = _L[:r], _L[26:26 + r]
    eq = f"{la},{lb}->{''.join(x + y for x, y in zip(la, lb, strict=True))}"
    prod = ctx.op("Einsum", [a, b], equation=eq)
    return ctx.op("Reshape", [prod, ctx.ints([x * y for x, y in zip(sa, sb, strict=True)])])


def _einsum(ctx: Context) -> str:
    eq = str(ctx.attrs["subscripts"]).replace(" ", "")
    terms = eq.split("->")[0].split(",")
    ranks = [ctx.rank(i) for i in range(len(ctx.inputs))]
    ell = [r - len(t.replace("...", "")) for t, r in zip(terms, ranks, strict=True)]
    most = max(e for t, e in zip(terms, ell, strict=True) if "..." in t) if "..." in eq else 0
    operands = []
    for i, (t, e) in enumerate(zip(terms, ell, strict=True)):
        x = ctx.input(i)
        if "..." in t and e < most:
            # ONNX wants every ellipsis to span as many axes: NumPy aligns them right.
            at = len(t[:t.index("...")])
            x = ctx.op("Unsqueeze", [x, ctx.ints(range(at, at + most - e))])
        operands.append(x)
    return ctx.op("Einsum", operands, equation=eq)


def _diag_square(ctx: Context, x: str, shape: tuple[int, ...], offset: int, a1: int,
                 a2: int) -> tuple[str, str]:
    """x sliced so that its ``offset`` diagonal along axes a1, a2 is the main one, and the
    einsum subscripts naming both axes alike."""
    n = max(0, min(shape[a1] - max(-offset, 0), shape[a2] - max(offset, 0)))
    starts = [max(-offset, 0), max(offset, 0)]
    ends = [starts[0] + n, starts[1] + n]
    x = ctx.op("Slice", [x, ctx.ints(starts), ctx.ints(ends), ctx.ints([a1, a2])])
    letters = list(_L[:len(shape)])
    letters[a2] = letters[a1]
    return x, "".join(letters)


def _diagonal_like(trace: bool) -> Converter:
    def convert(ctx: Context) -> str:
        a = ctx.attrs
        shape = _static(ctx, 0)
        a1, a2 = (int(v) % len(shape) for v in (a["axis1"], a["axis2"]))
        x, term = _diag_square(ctx, ctx.input(0), shape, int(a["offset"]), a1, a2)
        rest = "".join(c for k, c in enumerate(term) if k not in (a1, a2))
        out = rest if trace else rest + term[a1]
        return ctx.op("Einsum", [x], equation=f"{term}->{out}")

    return convert


def _diag(ctx: Context) -> str:
    k, shape = int(ctx.attrs["k"]), _static(ctx, 0)
    if len(shape) == 2:
        x, term = _diag_square(ctx, ctx.input(0), shape, k, 0, 1)
        return ctx.op("Einsum", [x], equation=f"{term}->{term[0]}")
    n = shape[0] + abs(k)
    eye = ctx.constant(np.eye(n, k=k), ctx.out_dtype)
    v = ctx.op("Pad", [ctx.input(0), ctx.ints([0, abs(k)]), ctx.constant(0, ctx.out_dtype)])
    # Row i of the k-th diagonal (k >= 0) holds v[i]; column j of a lower one holds v[j].
    return ctx.op("Mul", [eye, ctx.op("Unsqueeze", [v, ctx.ints([1 if k >= 0 else 0])])])


def _triangle(upper: int) -> Converter:
    def convert(ctx: Context) -> str:
        k = ctx.constant(int(ctx.attrs["k"]), np.int64)
        return ctx.op("Trilu", [ctx.input(0), k], upper=upper)

    return convert


def _det(ctx: Context) -> str:
    return ctx.op("Det", [ctx.input(0)])


def _slogdet(sign: bool) -> Converter:
    """sign(det(a)) or log|det(a)| from Det: overflows where det does (large matrices)."""

    def convert(ctx: Context) -> str:
        det = ctx.op("Det", [ctx.input(0)])
        return ctx.op("Sign", [det]) if sign else ctx.op("Log", [ctx.op("Abs", [det])])

    return convert


def _matrix_power(ctx: Context) -> str:
    n = int(ctx.attrs["n"])
    if n < 0:
        raise ctx.fail("a negative matrix power needs an inverse, which ONNX lacks")
    a = ctx.input(0)
    if n == 0:
        shape = _static(ctx, 0)
        eye = ctx.constant(np.eye(shape[-1]), ctx.out_dtype)
        return ctx.op("Expand", [eye, ctx.shape_of(a)])
    out = a
    for _ in range(n - 1):
        out = ctx.op("MatMul", [out, a])
    return out if out != a else ctx.op("Identity", [a])


def _norm(ctx: Context) -> str:
    a = ctx.attrs
    ord_, axis, keep = a["ord"], a["axis"], bool(a["keepdims"])
    x, rank = ctx.input(0), ctx.rank(0)
    axes = ctx.axes(axis, rank)
    if ord_ in (None, "fro") or (len(axes) == 1 and ord_ == 2):
        return ctx.op("Sqrt", [ctx.reduce("ReduceSum", ctx.op("Mul", [x, x]), axes, keep)])
    ax = ctx.op("Abs", [x])
    if len(axes) == 1 and ord_ in (np.inf, -np.inf):
        return ctx.reduce("ReduceMax" if ord_ > 0 else "ReduceMin", ax, axes, keep)
    if len(axes) == 1 and ord_ == 0:
        nonzero = ctx.op("Not", [ctx.op("Equal", [x, ctx.constant(0, ctx.out_dtype)])])
        return ctx.reduce("ReduceSum", ctx.cast(nonzero, None, ctx.out_dtype), axes, keep)
    if len(axes) == 1 and isinstance(ord_, (int, float)):
        p = ctx.constant(float(ord_), ctx.out_dtype)
        s = ctx.reduce("ReduceSum", ctx.op("Pow", [ax, p]), axes, keep)
        return ctx.op("Pow", [s, ctx.op("Reciprocal", [p])])
    if len(axes) == 2 and ord_ in (1, -1, np.inf, -np.inf):
        rows, cols = (int(v) % rank for v in (axes if axis is None else axis))
        inner, outer = (rows, cols) if ord_ in (1, -1) else (cols, rows)
        s = ctx.reduce("ReduceSum", ax, [inner], True)
        m = ctx.reduce("ReduceMax" if ord_ > 0 else "ReduceMin", s, [outer], True)
        return m if keep else ctx.op("Squeeze", [m, ctx.ints(sorted((rows, cols)))])
    raise ctx.fail(f"norm ord={ord_!r} over axes {axes} needs singular values, which "
                   "ONNX lacks")


def _shape_only(ctx: Context) -> str:
    """A helper whose value follows from its input's shape alone: a constant."""
    dtype = ctx.dtype(0)
    value = ctx.node.op.forward(np.zeros(_static(ctx, 0), dtype), **ctx.attrs)
    return ctx.constant(np.asarray(value), ctx.out_dtype)


CONVERTERS: Final[dict[str, Converter]] = {
    "dot": _einsum_of(_dot_subs),
    "inner": _einsum_of(_inner_subs),
    "tensordot": _tensordot,
    "vdot": _vdot,
    "outer": _outer,
    "kron": _kron,
    "einsum": _einsum,
    "trace": _diagonal_like(trace=True),
    "diagonal": _diagonal_like(trace=False),
    "diag": _diag,
    "tril": _triangle(0),
    "triu": _triangle(1),
    "linalg_det": _det,
    "linalg_slogdet": _slogdet(sign=False),
    "linalg_slogdet_sign": _slogdet(sign=True),
    "linalg_matrix_power": _matrix_power,
    "linalg_norm": _norm,
    "linalg_einsum_mask": _shape_only,
    "linalg_diag_selector": _shape_only,
    "linalg_tri_mask": _shape_only,
}


@autodag.hookimpl
def autodag_onnx_converters() -> dict[str, Converter]:
    """The ONNX converters of the linalg ops."""
    return dict(CONVERTERS)

