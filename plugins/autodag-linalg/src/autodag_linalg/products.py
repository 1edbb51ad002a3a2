"""Products: dot, vdot, inner, outer, tensordot, kron.

Each is an einsum whose subscripts follow from the operands' ranks (and tensordot's
axes); the gradients are that einsum's (``einsum_vjp``), so they differentiate again.
NumPy arrays and Python numbers take NumPy's own function; another library's arrays
the einsum, written with its array-API functions. Gradients are for real operands
(vdot conjugates a complex first operand; its rule does not).
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from autodag import OpDef, Sample
from autodag.backend import namespace_of

from ._einsum import any_foreign, generic_einsum, shape_of
from .einsum import einsum_vjp

__all__ = ["DOT", "INNER", "KRON", "OUTER", "TENSORDOT", "VDOT"]

_L: Final = string.ascii_letters
_Rng = np.random.Generator


def _dot_subs(na: int, nb: int) -> str:
    if na == 0 or nb == 0:
        return f"{_L[:na]},{_L[26:26 + nb]}->{_L[:na]}{_L[26:26 + nb]}"
    a = _L[:na]
    if nb == 1:
        return f"{a},{a[-1]}->{a[:-1]}"
    b = _L[26:26 + nb - 2] + a[-1] + "z"
    return f"{a},{b}->{a[:-1]}{b[:-2]}z"


def _inner_subs(na: int, nb: int) -> str:
    if na == 0 or nb == 0:
        return _dot_subs(na, nb)
    a, b = _L[:na], _L[26:26 + nb - 1] + _L[na - 1]
    return f"{a},{b}->{a[:-1]}{b[:-1]}"


def _tensordot_axes(na: int, nb: int, axes: Any) -> tuple[list[int], list[int]]:
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        return list(range(na - n, na)), list(range(n))
    xa, xb = axes
    xa = [int(xa)] if isinstance(xa, (int, np.integer)) else [int(i) for i in xa]
    xb = [int(xb)] if isinstance(xb, (int, np.integer)) else [int(i) for i in xb]
    return [i % na for i in xa], [i % nb for i in xb]


def _tensordot_subs(na: int, nb: int, axes: Any) -> str:
    xa, xb = _tensordot_axes(na, nb, axes)
    a = list(_L[:na])
    b = list(_L[26:26 + nb])
    for i, j in zip(xa, xb):
        b[j] = a[i]
    out = [c for i, c in enumerate(a) if i not in xa] + [c for j, c in enumerate(b)
                                                          if j not in xb]
    return f"{''.join(a)},{''.join(b)}->{''.join(out)}"


def _rank(xp: Any, x: Any) -> int:
    return int(xp.ndim(x))


def _via(subs: Callable[[int, int], str], numpy_fn: Callable[..., Any]) -> Callable[..., Any]:
    """A forward: NumPy's function, or the einsum on another library's arrays."""

    def forward(a: Any, b: Any) -> Any:
        if any_foreign((a, b)):
            return generic_einsum(subs(len(shape_of(a)), len(shape_of(b))), a, b)
        return numpy_fn(a, b)

    return forward


def _vjps(subs: Callable[[int, int], str]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def da(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
        return einsum_vjp(xp, g, (a, b), subs(_rank(xp, a), _rank(xp, b)), 0)

    def db(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
        return einsum_vjp(xp, g, (a, b), subs(_rank(xp, a), _rank(xp, b)), 1)

    return da, db


def _tensordot(a: Any, b: Any, axes: Any) -> Any:
    if any_foreign((a, b)):
        return generic_einsum(_tensordot_subs(len(shape_of(a)), len(shape_of(b)), axes), a, b)
    return np.tensordot(a, b, axes)


def _tensordot_vjp(k: int) -> Callable[..., Any]:
    def vjp(xp: Any, g: Any, out: Any, a: Any, b: Any, axes: Any) -> Any:
        return einsum_vjp(xp, g, (a, b), _tensordot_subs(_rank(xp, a), _rank(xp, b), axes), k)

    return vjp


def _flat(xp: Any, x: Any) -> Any:
    return xp.reshape(x, (-1,))


def _outer(a: Any, b: Any) -> Any:
    if any_foreign((a, b)):
        xp = namespace_of(a, b)
        return generic_einsum("i,j->ij", xp.reshape(xp.asarray(a), (-1,)),
                              xp.reshape(xp.asarray(b), (-1,)))
    return np.outer(a, b)


def _vdot(a: Any, b: Any) -> Any:
    if any_foreign((a, b)):
        xp = namespace_of(a, b)
        return generic_einsum("i,i->", xp.reshape(xp.asarray(a), (-1,)),
                              xp.reshape(xp.asarray(b), (-1,)))
    return np.vdot(a, b)


def _kron_shapes(sa: tuple[int, ...], sb: tuple[int, ...]
                 ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The operands' shapes padded with leading ones to one rank, as numpy.kron pads."""
    n = max(len(sa), len(sb))
    return (1,) * (n - len(sa)) + sa, (1,) * (n - len(sb)) + sb


def _kron_subs(n: int) -> tuple[str, str, str]:
    """Terms of a, b and of the interleaved (a0, b0, a1, b1, ...) product."""
    a, b = _L[:n], _L[26:26 + n]
    return a, b, "".join(x + y for x, y in zip(a, b))


def _kron(a: Any, b: Any) -> Any:
    if not any_foreign((a, b)):
        return np.kron(a, b)
    xp = namespace_of(a, b)
    sa, sb = _kron_shapes(shape_of(a), shape_of(b))
    ta, tb, tab = _kron_subs(len(sa))
    prod = generic_einsum(f"{ta},{tb}->{tab}", xp.reshape(xp.asarray(a), sa),
                          xp.reshape(xp.asarray(b), sb))
    return xp.reshape(prod, tuple(x * y for x, y in zip(sa, sb)))


def _kron_vjp(k: int) -> Callable[..., Any]:
    def vjp(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
        sa, sb = _kron_shapes(tuple(xp.shape(a)), tuple(xp.shape(b)))
        ta, tb, tab = _kron_subs(len(sa))
        g4 = xp.reshape(g, tuple(d for pair in zip(sa, sb) for d in pair))
        if k == 0:
            part = xp.einsum([g4, xp.reshape(b, sb)], subscripts=f"{tab},{tb}->{ta}")
            return xp.reshape(part, tuple(xp.shape(a)))
        part = xp.einsum([g4, xp.reshape(a, sa)], subscripts=f"{tab},{ta}->{tb}")
        return xp.reshape(part, tuple(xp.shape(b)))

    return vjp


def _flat_vjp(k: int) -> Callable[..., Any]:
    """outer's and vdot's rules: an einsum of the flattened operands, reshaped back."""
    def vjp(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
        subs = "i,j->ij" if xp.ndim(g) == 2 else "i,i->"
        part = einsum_vjp(xp, g, (_flat(xp, a), _flat(xp, b)), subs, k)
        return xp.reshape(part, tuple(xp.shape((a, b)[k])))

    return vjp


def _pair_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((2, 3)), r((3, 4)))),
        Sample((r((3,)), r((3,)))),
        Sample((r((2, 3)), r((3,)))),
        Sample((r((2, 2, 3)), r((4, 3, 2)))),
        Sample((r(()), r((2, 3)))),
    ]


def _inner_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((2, 3)), r((4, 3)))),
        Sample((r((3,)), r((3,)))),
        Sample((r((2, 2, 3)), r((3,)))),
        Sample((r(()), r((2, 3)))),
    ]


def _outer_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((3,)), r((2,)))), Sample((r((2, 2)), r((3,))))]


def _vdot_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((3,)), r((3,)))), Sample((r((2, 3)), r((3, 2))))]


def _tensordot_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((2, 3, 4)), r((3, 4, 2)))),
        Sample((r((2, 3)), r((3, 4))), {"axes": 1}),
        Sample((r((3, 2, 4)), r((4, 3))), {"axes": ([0, 2], [1, 0])}),
        Sample((r((2, 3)), r((4,))), {"axes": 0}),
    ]


def _kron_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((2, 3)), r((2, 2)))), Sample((r((3,)), r((2, 2)))),
            Sample((r((2,)), r((3,))))]


DOT: Final = OpDef(
    name="dot", arity=2, forward=_via(_dot_subs, np.dot), backward=_vjps(_dot_subs),
    input_names=("a", "b"), samples=_pair_samples, array_api=True,
    doc="Dot product as numpy.dot: a sum over a's last and b's second-to-last axis.",
)
INNER: Final = OpDef(
    name="inner", arity=2, forward=_via(_inner_subs, np.inner), backward=_vjps(_inner_subs),
    input_names=("a", "b"), samples=_inner_samples, array_api=True,
    doc="Inner product over the last axes, as numpy.inner.",
)
OUTER: Final = OpDef(
    name="outer", arity=2, forward=_outer, backward=(_flat_vjp(0), _flat_vjp(1)),
    input_names=("a", "b"), samples=_outer_samples, array_api=True,
    doc="Outer product of the flattened inputs, as numpy.outer.",
)
VDOT: Final = OpDef(
    name="vdot", arity=2, forward=_vdot, backward=(_flat_vjp(0), _flat_vjp(1)),
    input_names=("a", "b"), samples=_vdot_samples, array_api=True,
    doc="Dot product of the flattened inputs, as numpy.vdot (gradients for real inputs).",
)
TENSORDOT: Final = OpDef(
    name="tensordot", arity=2, attributes={"axes": 2}, forward=_tensordot,
    backward=(_tensordot_vjp(0), _tensordot_vjp(1)),
    input_names=("a", "b"), samples=_tensordot_samples, array_api=True,
    doc="Sum over the given axes (the last `axes` of a and first of b, or a pair of "
        "axis lists), as numpy.tensordot.",
)
KRON: Final = OpDef(
    name="kron", arity=2, forward=_kron, backward=(_kron_vjp(0), _kron_vjp(1)),
    input_names=("a", "b"), samples=_kron_samples, array_api=True,
    doc="Kronecker product, as numpy.kron.",
)
