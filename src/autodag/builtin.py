"""The built-in plugin: arithmetic ops, and the structural ops their rules are made of.

It is registered through the same hook as any third-party plugin. Every rule here uses
only ``xp`` and Python operators, so it serves numbers and graph nodes alike.

The ops' rules are in ``autodag.builtin_rules``; this module holds the op definitions
(with their samples, for ``autodag check``) and the hook. Every op runs on any
array-API backend (``array_api=True``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np

from .builtin_rules import (
    _add,
    _broadcast_like,
    _divide,
    _expand_dims,
    _g,
    _log_or_zero,
    _matmul,
    _matmul_da,
    _matmul_db,
    _multiply,
    _neg_g,
    _negate,
    _power,
    _power_base_grad,
    _seed_like,
    _squeeze,
    _squeeze_axes,
    _subtract,
    _swapaxes,
    _unbroadcast,
)
from .hookspecs import hookimpl
from .kernelform import KernelForm
from .opdef import REQUIRED, OpDef, Sample
from .rewrite import Rewrite

__all__ = ["autodag_kernel_forms", "autodag_onnx_converters", "autodag_register_ops",
           "autodag_rewrites"]

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
            "seed_like": [Sample((r((2, 3)),)), Sample((r(()),))],
            "log_or_zero": [Sample((pos(2, 3),)), Sample((pos(),))],
            "power_base_grad": [Sample((pos(2, 3), r((2, 3)))), Sample((pos(3), r(())))],
        }
        return table[name]

    return samples


_OPS: Final = [
    OpDef(
        name="add", array_api=True, arity=2, forward=_add, backward=(_g, _g),
        inline="{0} + {1}", inline_vjps=("{g}", "{g}"),
        input_names=("x1", "x2"), samples=_binary_samples(), doc="Elementwise a + b.",
    ),
    OpDef(
        name="subtract", array_api=True, arity=2, prefix="sub", forward=_subtract,
        backward=(_g, _neg_g), input_names=("x1", "x2"), samples=_binary_samples(),
        inline="{0} - {1}", inline_vjps=("{g}", "-{g}"),
        doc="Elementwise a - b.",
    ),
    OpDef(
        name="negate", array_api=True, arity=1, prefix="neg", forward=_negate, backward=(_neg_g,),
        inline="-{0}", inline_vjps=("-{g}",),
        input_names=("x",), samples=_unary_samples, doc="Elementwise -a.",
    ),
    OpDef(
        name="multiply", array_api=True, arity=2, prefix="mul", forward=_multiply,
        backward=(
            lambda xp, g, out, a, b: g * b,
            lambda xp, g, out, a, b: g * a,
        ),
        inline="{0} * {1}", inline_vjps=("{g} * {1}", "{g} * {0}"),
        input_names=("x1", "x2"), samples=_binary_samples(), doc="Elementwise a * b.",
    ),
    OpDef(
        name="divide", array_api=True, arity=2, prefix="div", forward=_divide,
        backward=(
            lambda xp, g, out, a, b: g / b,
            # -g*a/b**2, written with the quotient so that it is exactly the inline form
            lambda xp, g, out, a, b: -((g / b) * out),
        ),
        # Inline, so that a dying operand's buffer takes the quotient: on Python numbers
        # Python raises on a / 0.0 where the forward answers inf, and a plan then runs
        # the call on NumPy floats or through the interpreter.
        # d(a/b)/db = -g*a/b**2 = -((g/b) * out): fewer operations, g / b computed once
        # for both inputs, and the product made in the buffer of ``out`` when the
        # program lets it go (the negation, exact, then in the product's).
        inline="{0} / {1}", inline_vjps=("{g} / {1}", "-(({g} / {1}) * {out})"),
        input_names=("x1", "x2"), samples=_binary_samples(positive_b=True),
        doc="Elementwise a / b.",
    ),
    OpDef(
        name="power", array_api=True, arity=2, prefix="pow", forward=_power,
        backward=(
            lambda xp, g, out, a, b: g * xp.power_base_grad(a, b),
            lambda xp, g, out, a, b: g * out * xp.log_or_zero(a),
        ),
        # No inline forward: Python's ** raises or goes complex where NumPy answers.
        inline_vjps=("{g} * xp.power_base_grad({0}, {1})", "{g} * {out} * xp.log_or_zero({0})"),
        input_names=("x1", "x2"), samples=_binary_samples(positive_a=True),
        doc="Elementwise a ** b (products on floats for b = -3, -2, 3, 4); d/db is "
            "log(a) * a**b where a > 0 and 0 where a == 0.",
    ),
    OpDef(
        name="matmul", array_api=True, arity=2, forward=_matmul, backward=(_matmul_da, _matmul_db),
        inline="{0} @ {1}",
        input_names=("x1", "x2"), samples=_matmul_samples,
        doc="Matrix product a @ b with NumPy's rules for 1-D and batched operands.",
    ),
    # Structural ops that the rules above (and the engine's symbolic unbroadcasting) need.
    OpDef(
        name="expand_dims", array_api=True, arity=1, attributes={"axis": REQUIRED},
        forward=_expand_dims,
        backward=(lambda xp, g, out, a, axis: xp.squeeze(g, axis),),
        input_names=("a",), samples=_structural_samples("expand_dims"),
        doc="Insert a length-1 axis, as numpy.expand_dims.",
    ),
    OpDef(
        name="squeeze", array_api=True, arity=1, attributes={"axis": None},
        forward=_squeeze,
        backward=(lambda xp, g, out, a, axis: xp.expand_dims(g, _squeeze_axes(xp, a, axis)),),
        input_names=("a",), samples=_structural_samples("squeeze"),
        doc="Remove length-1 axes, as numpy.squeeze.",
    ),
    OpDef(
        name="swapaxes", array_api=True, arity=1, attributes={"axis1": REQUIRED, "axis2": REQUIRED},
        forward=_swapaxes,
        backward=(lambda xp, g, out, a, axis1, axis2: xp.swapaxes(g, axis1, axis2),),
        input_names=("a",), samples=_structural_samples("swapaxes"),
        doc="Interchange two axes, as numpy.swapaxes.",
    ),
    OpDef(
        name="unbroadcast", array_api=True, arity=2,
        forward=_unbroadcast,
        backward=(lambda xp, h, out, g, like: xp.broadcast_like(h, g), None),
        samples=_structural_samples("unbroadcast"),
        doc="Sum g over the axes along which a value shaped like `like` was broadcast.",
    ),
    OpDef(
        name="broadcast_like", array_api=True, arity=2,
        forward=_broadcast_like,
        backward=(lambda xp, h, out, a, like: xp.unbroadcast(h, a), None),
        samples=_structural_samples("broadcast_like"),
        doc="Broadcast a against the shape of `like`.",
    ),
    OpDef(
        name="seed_like", array_api=True, arity=1, forward=_seed_like, backward=None,
        samples=_structural_samples("seed_like"),
        doc="Ones of a's shape in a's gradient dtype and array library (a derivative's "
            "seed; not differentiable).",
    ),
    OpDef(
        name="log_or_zero", array_api=True, arity=1, forward=_log_or_zero,
        backward=(lambda xp, g, out, a: g / a,),
        samples=_structural_samples("log_or_zero"),
        doc="log(a) where a > 0, 0 where a == 0: the exponent rule of power.",
    ),
    OpDef(
        name="power_base_grad", array_api=True, arity=2, forward=_power_base_grad,
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


@hookimpl
def autodag_onnx_converters() -> dict[str, Callable[..., str]]:
    """The ONNX converters of the built-in ops."""
    from .builtin_onnx import CONVERTERS

    return dict(CONVERTERS)


@hookimpl
def autodag_kernel_forms() -> dict[str, KernelForm]:
    """The kernel forms of the built-in elementwise ops, for fused kernels."""
    from .builtin_kernels import FORMS

    return dict(FORMS)


@hookimpl
def autodag_rewrites() -> dict[str, Rewrite]:
    """The built-in rewrites: CSE and exact algebraic identities."""
    from .builtin_rewrites import REWRITES

    return dict(REWRITES)
