"""The built-in plugin: arithmetic ops, and the structural ops their rules are made of.

It is registered through the same hook as any third-party plugin. Every rule here uses
only ``xp`` and Python operators, so it serves numbers and graph nodes alike.

Forward rules keep Python scalars as Python scalars where Python computes the same
result as NumPy (the fast path for scalar graphs), and fall back to NumPy where Python
would raise or go complex.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from ._arrays import sum_to
from .hookspecs import hookimpl
from .opdef import REQUIRED, OpDef, Sample

__all__ = ["autodag_register_ops"]

_PY_REAL: Final = (int, float)


def _add(a: Any, b: Any) -> Any:
    return a + b


def _subtract(a: Any, b: Any) -> Any:
    return a - b


def _negate(a: Any) -> Any:
    return -a


def _multiply(a: Any, b: Any) -> Any:
    return a * b


def _matmul(a: Any, b: Any) -> Any:
    return a @ b


def _divide(a: Any, b: Any) -> Any:
    try:
        return a / b
    except ZeroDivisionError:
        return np.divide(np.float64(a), b)


def _py_power(a: Any, b: Any) -> Any:
    """``a ** b`` of Python numbers with NumPy's IEEE answers where Python differs.

    Python raises on 0.0 ** -1 and on float overflow, goes complex for (-8.0) ** (1/3),
    and computes integer powers exactly however large (2 ** 10**9 would take minutes):
    NumPy answers inf, nan, or inf for a power beyond the float range.
    """
    if (a.__class__ is int and b.__class__ is int and b > 0 and abs(a) > 1
            and b * math.log2(abs(a)) > 1024):
        return np.power(np.float64(a), b)
    try:
        r = a**b
    except (ZeroDivisionError, OverflowError):
        return np.power(np.float64(a), b)
    if type(r) is complex:
        return np.power(np.float64(a), b)
    return r


def _power(a: Any, b: Any) -> Any:
    ta, tb = a.__class__, b.__class__
    if (ta is float or ta is int) and (tb is float or tb is int):
        return _py_power(a, b)
    if ta is np.ndarray and a.dtype.kind == "f" and (tb is float or tb is int):
        # The common case, without the dtype checks below; ``**`` rather than np.power
        # for NumPy's fast paths (x**2 is x*x).
        return a**b
    if np.result_type(a).kind in "biu" and np.result_type(b).kind in "biu":
        # NumPy refuses integers to negative integer powers; autodag computes in float.
        return np.power(np.asarray(a, dtype=np.float64), b)
    return np.power(a, b)


def _broadcast_like(a: Any, like: Any) -> Any:
    if like.__class__ is np.ndarray and like.size <= 4096:
        # A scalar gradient spread over a small array (the rule of sum): cheaper made
        # than NumPy's broadcasting machinery, and writeable. A large one stays a
        # broadcast view, which costs no memory and no pass over it.
        if isinstance(a, np.generic):  # what np.full makes, without its dtype lookup
            r = np.empty(like.shape, dtype=a.dtype)
            r.fill(a)
            return r
        if np.ndim(a) == 0:
            return np.full(like.shape, a)
    return np.broadcast_to(a, np.broadcast_shapes(np.shape(a), np.shape(like)))


def _floated(a: Any) -> Any:
    return np.asarray(a, dtype=np.float64) if np.result_type(a).kind in "biu" else a


def _log_or_zero(a: Any) -> Any:
    """log(a) where a > 0, 0 where a == 0 (nan where a < 0, as NumPy's real log)."""
    if type(a) in _PY_REAL:
        # A Python scalar stays one: a NumPy float64 here would widen float32 gradients.
        return math.log(a) if a > 0 else (0.0 if a == 0 else math.nan)
    arr = _floated(np.asarray(a))
    with np.errstate(invalid="ignore"):
        r = np.log(np.where(arr == 0, 1, arr))
    return r if np.ndim(r) else r[()]


def _power_base_grad(a: Any, b: Any) -> Any:
    """d(a**b)/da = b * a**(b-1), exactly 0 where b == 0."""
    ta, tb = a.__class__, b.__class__
    if (ta is float or ta is int) and (tb is float or tb is int):
        if b == 0:
            return 0.0
        r = _py_power(a, b - 1)
        if r.__class__ is float or r.__class__ is int:
            return b * r
    if (ta is np.ndarray and a.ndim and a.dtype.kind == "f"
            and (tb is int or (tb is float and b.is_integer())) and b >= 1):
        # A power of at least 0 cannot divide by zero or go invalid: no errstate needed.
        # b as a float: NumPy multiplies by a Python float faster than by an int, and
        # b is exactly a float (an integer of at most 2**53).
        fb = float(b) if abs(b) <= 2**53 else b
        return fb * a if b == 2 else fb * a ** (b - 1)
    af = _floated(np.asarray(a))
    with np.errstate(divide="ignore", invalid="ignore"):
        if tb is float or tb is int:  # a scalar exponent: one pass, no mask
            r = np.zeros_like(af) if b == 0 else b * np.power(af, b - 1)
        else:
            r = np.where(np.equal(b, 0), 0, b * np.power(af, np.subtract(b, 1)))
    return r if np.ndim(r) else r[()]


# --- backward rules: vjp(xp, g, out, *inputs, **attrs) --------------------------------
def _g(xp: Any, g: Any, out: Any, *args: Any) -> Any:
    return g


def _neg_g(xp: Any, g: Any, out: Any, *args: Any) -> Any:
    return -g


def _matmul_da(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
    if b.__class__ is np.ndarray and b.ndim == 2 and a.__class__ is np.ndarray and a.ndim >= 2:
        return g @ b.T  # numbers, the common case: what the general form below computes
    an, bn = xp.ndim(a), xp.ndim(b)
    if an == 1 and bn == 1:
        return g * b
    if bn == 1:  # (..., n, k) @ (k,) -> (..., n)
        return xp.expand_dims(g, -1) * b
    if an == 1:  # (k,) @ (..., k, m) -> (..., m); batch axes are summed by the engine
        return xp.squeeze(xp.matmul(b, xp.expand_dims(g, -1)), -1)
    return xp.matmul(g, xp.swapaxes(b, -1, -2))


def _matmul_db(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
    if a.__class__ is np.ndarray and a.ndim == 2 and b.__class__ is np.ndarray and b.ndim >= 2:
        return a.T @ g  # numbers, the common case: what the general form below computes
    an, bn = xp.ndim(a), xp.ndim(b)
    if an == 1 and bn == 1:
        return g * a
    if an == 1:  # (k,) @ (..., k, m) -> (..., m)
        return xp.expand_dims(a, -1) * xp.expand_dims(g, -2)
    if bn == 1:  # (..., n, k) @ (k,) -> (..., n)
        return xp.squeeze(xp.matmul(xp.swapaxes(a, -1, -2), xp.expand_dims(g, -1)), -1)
    return xp.matmul(xp.swapaxes(a, -1, -2), g)


def _squeeze_axes(xp: Any, a: Any, axis: Any) -> Any:
    if axis is None:
        return tuple(i for i, s in enumerate(xp.shape(a)) if s == 1)
    return axis


# --- sample inputs for autodag.testing.check_op -------------------------------------
def _binary_samples(
    positive_b: bool = False, positive_a: bool = False
) -> Callable[[np.random.Generator], list[Sample]]:
    def samples(rng: np.random.Generator) -> list[Sample]:
        def draw(shape: tuple[int, ...], positive: bool) -> Any:
            x = rng.standard_normal(shape)
            return np.abs(x) + 0.5 if positive else x

        return [
            Sample((draw((3,), positive_a), draw((3,), positive_b))),
            Sample((draw((2, 3), positive_a), draw((3,), positive_b))),
            Sample((draw((2, 1), positive_a), draw((1, 4), positive_b))),
            Sample((draw((), positive_a), draw((2, 2), positive_b))),
        ]

    return samples


def _unary_samples(rng: np.random.Generator) -> list[Sample]:
    return [Sample((rng.standard_normal((2, 3)),)), Sample((rng.standard_normal(()),))]


def _matmul_samples(rng: np.random.Generator) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((2, 3)), r((3, 4)))),
        Sample((r((3,)), r((3, 4)))),
        Sample((r((2, 3)), r((3,)))),
        Sample((r((3,)), r((3,)))),
        Sample((r((5, 2, 3)), r((3, 4)))),
        Sample((r((3,)), r((5, 3, 2)))),
    ]



def _structural_samples(name: str) -> Callable[[np.random.Generator], list[Sample]]:
    """Sample inputs for the helper ops, so that ``autodag check`` covers them too."""

    def samples(rng: np.random.Generator) -> list[Sample]:
        r = rng.standard_normal

        def pos(*shape: int) -> Any:
            return np.abs(r(shape)) + 0.5

        table: dict[str, list[Sample]] = {
            "expand_dims": [Sample((r((2, 3)),), {"axis": 1}), Sample((r((3,)),), {"axis": -1})],
            "squeeze": [Sample((r((2, 1, 3)),), {"axis": 1}), Sample((r((1, 3, 1)),))],
            "swapaxes": [Sample((r((2, 3, 4)),), {"axis1": 0, "axis2": 2})],
            "unbroadcast": [Sample((r((2, 3)), r((3,)))), Sample((r((4, 2, 3)), r((2, 1))))],
            "broadcast_like": [Sample((r((3,)), r((2, 3)))), Sample((r(()), r((2, 2))))],
            "log_or_zero": [Sample((pos(2, 3),)), Sample((pos(),))],
            "power_base_grad": [Sample((pos(2, 3), r((2, 3)))), Sample((pos(3), r(())))],
        }
        return table[name]

    return samples


_OPS: Final = [
    OpDef(
        name="add", arity=2, forward=_add, backward=(_g, _g),
        inline="{0} + {1}", inline_vjps=("{g}", "{g}"),
        input_names=("x1", "x2"), samples=_binary_samples(), doc="Elementwise a + b.",
    ),
    OpDef(
        name="subtract", arity=2, prefix="sub", forward=_subtract,
        backward=(_g, _neg_g), input_names=("x1", "x2"), samples=_binary_samples(),
        inline="{0} - {1}", inline_vjps=("{g}", "-{g}"),
        doc="Elementwise a - b.",
    ),
    OpDef(
        name="negate", arity=1, prefix="neg", forward=_negate, backward=(_neg_g,),
        inline="-{0}", inline_vjps=("-{g}",),
        input_names=("x",), samples=_unary_samples, doc="Elementwise -a.",
    ),
    OpDef(
        name="multiply", arity=2, prefix="mul", forward=_multiply,
        backward=(
            lambda xp, g, out, a, b: g * b,
            lambda xp, g, out, a, b: g * a,
        ),
        inline="{0} * {1}", inline_vjps=("{g} * {1}", "{g} * {0}"),
        input_names=("x1", "x2"), samples=_binary_samples(), doc="Elementwise a * b.",
    ),
    OpDef(
        name="divide", arity=2, prefix="div", forward=_divide,
        backward=(
            lambda xp, g, out, a, b: g / b,
            # -g*a/b**2, written with the quotient so that it is exactly the inline form
            lambda xp, g, out, a, b: -(g / b) * out,
        ),
        # No inline forward: Python raises on a / 0.0 where the forward answers inf.
        # d(a/b)/db = -g*a/b**2 = -(g/b) * out: fewer operations, and g / b is computed
        # once for both inputs.
        inline_vjps=("{g} / {1}", "-({g} / {1}) * {out}"),
        input_names=("x1", "x2"), samples=_binary_samples(positive_b=True),
        doc="Elementwise a / b.",
    ),
    OpDef(
        name="power", arity=2, prefix="pow", forward=_power,
        backward=(
            lambda xp, g, out, a, b: g * xp.power_base_grad(a, b),
            lambda xp, g, out, a, b: g * out * xp.log_or_zero(a),
        ),
        # No inline forward: Python's ** raises or goes complex where NumPy answers.
        inline_vjps=("{g} * xp.power_base_grad({0}, {1})", "{g} * {out} * xp.log_or_zero({0})"),
        input_names=("x1", "x2"), samples=_binary_samples(positive_a=True),
        doc="Elementwise a ** b; d/db is log(a) * a**b where a > 0 and 0 where a == 0.",
    ),
    OpDef(
        name="matmul", arity=2, forward=_matmul, backward=(_matmul_da, _matmul_db),
        inline="{0} @ {1}",
        input_names=("x1", "x2"), samples=_matmul_samples,
        doc="Matrix product a @ b with NumPy's rules for 1-D and batched operands.",
    ),
    # Structural ops that the rules above (and the engine's symbolic unbroadcasting) need.
    OpDef(
        name="expand_dims", arity=1, attributes={"axis": REQUIRED},
        forward=lambda a, axis: np.expand_dims(a, axis),
        backward=(lambda xp, g, out, a, axis: xp.squeeze(g, axis),),
        input_names=("a",), samples=_structural_samples("expand_dims"),
        doc="Insert a length-1 axis, as numpy.expand_dims.",
    ),
    OpDef(
        name="squeeze", arity=1, attributes={"axis": None},
        forward=lambda a, axis: np.squeeze(a, axis),
        backward=(lambda xp, g, out, a, axis: xp.expand_dims(g, _squeeze_axes(xp, a, axis)),),
        input_names=("a",), samples=_structural_samples("squeeze"),
        doc="Remove length-1 axes, as numpy.squeeze.",
    ),
    OpDef(
        name="swapaxes", arity=1, attributes={"axis1": REQUIRED, "axis2": REQUIRED},
        forward=lambda a, axis1, axis2: np.swapaxes(a, axis1, axis2),
        backward=(lambda xp, g, out, a, axis1, axis2: xp.swapaxes(g, axis1, axis2),),
        input_names=("a",), samples=_structural_samples("swapaxes"),
        doc="Interchange two axes, as numpy.swapaxes.",
    ),
    OpDef(
        name="unbroadcast", arity=2,
        forward=lambda g, like: sum_to(g, np.shape(like)),
        backward=(lambda xp, h, out, g, like: xp.broadcast_like(h, g), None),
        samples=_structural_samples("unbroadcast"),
        doc="Sum g over the axes along which a value shaped like `like` was broadcast.",
    ),
    OpDef(
        name="broadcast_like", arity=2,
        forward=_broadcast_like,
        backward=(lambda xp, h, out, a, like: xp.unbroadcast(h, a), None),
        samples=_structural_samples("broadcast_like"),
        doc="Broadcast a against the shape of `like`.",
    ),
    OpDef(
        name="log_or_zero", arity=1, forward=_log_or_zero,
        backward=(lambda xp, g, out, a: g / a,),
        samples=_structural_samples("log_or_zero"),
        doc="log(a) where a > 0, 0 where a == 0: the exponent rule of power.",
    ),
    OpDef(
        name="power_base_grad", arity=2, forward=_power_base_grad,
        backward=(
            lambda xp, g, out, a, b: g * b * xp.power_base_grad(a, b - 1),
            lambda xp, g, out, a, b: g * (a ** (b - 1)) * (1 + b * xp.log_or_zero(a)),
        ),
        samples=_structural_samples("power_base_grad"),
        doc="b * a**(b-1), 0 where b == 0: the base rule of power.",
    ),
]


@hookimpl
def autodag_register_ops() -> list[OpDef]:
    """The built-in ops."""
    return list(_OPS)
