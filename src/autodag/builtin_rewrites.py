"""The built-in plugin's rewrites: common subexpressions, constant folding and
algebraic identities.

Each keeps every value bit for bit, IEEE included (``x * 1`` is ``x`` for NaN and inf
too, ``x ** 2`` is NumPy's ``x * x``), except the sign of a zero: ``-0.0 + 0`` is
``0.0`` where ``x`` stays ``-0.0`` (equal, as IEEE compares). Identities fire only where
the result's dtype and shape are certainly the operand's: a Python-number constant
(which takes an array's dtype) and a floating operand.
Gradients are those of the rewritten graph: equal to the original's, except that
merging common subexpressions sums their gradient contributions before applying a rule
rather than after (the same value up to rounding).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from .backend import is_numpy
from .rewrite import Rewrite

__all__ = ["FOLD_MAX_SIZE", "REWRITES"]

#: Folded results of more elements stay computed at run time: a constant is held by
#: the program for its whole life, a large one would cost more memory than it saves.
FOLD_MAX_SIZE: Final = 1 << 16


def _cse(ctx: Any, node: Any) -> Any:
    """The first node of the same op, attributes and inputs, if there was one."""
    try:
        key = (node.op.name, node.inputs, tuple(sorted(node.attrs.items())))
        hash(key)
    except TypeError:  # an unhashable attribute (an array): never merged
        return None
    seen = ctx.memo.setdefault(key, node)
    return None if seen is node else seen


def _fold(ctx: Any, node: Any) -> Any:
    """A Constant of the node's value when all its inputs are constants.

    It is the op's own forward rule on the same values, so the value is the one the
    program would compute, bit for bit; a call that raises or meets a floating-point
    error (0/0, overflow) is left to run time, where it is reported as usual.
    """
    values = ctx.constant_inputs(node)
    if not values:  # None, or an op of no inputs
        return None
    try:
        with np.errstate(all="raise"):
            value = node.op.forward(*values, **node.attrs)
    except Exception:
        return None
    if isinstance(value, np.ndarray):
        if value.size > FOLD_MAX_SIZE or value.dtype.kind not in "biufc":
            return None
    elif not is_numpy(value):
        return None
    return ctx.constant(value, like=node)


def _identity(value: float, *positions: int) -> Any:
    """A rewrite returning the other operand when the one at a position is ``value``."""

    def apply(ctx: Any, node: Any) -> Any:
        a, b = node.inputs
        for k in positions:
            other = b if k == 0 else a
            if ctx.number(node.inputs[k]) == value and ctx.floating(other):
                return other
        return None

    return apply


def _power_two(ctx: Any, node: Any) -> Any:
    a, b = node.inputs
    if ctx.number(b) == 2.0 and ctx.floating(a):
        return ctx.build("multiply", a, a, like=node)
    return None


def _add_self(ctx: Any, node: Any) -> Any:
    a, b = node.inputs
    if a is b and ctx.floating(a):
        # Doubling is exact in IEEE arithmetic (inf and NaN included): one read of x.
        return ctx.build("multiply", a, ctx.constant(2.0), like=node)
    return None


def _double_negation(ctx: Any, node: Any) -> Any:
    (a,) = node.inputs
    if ctx.op_of(a) == "negate" and ctx.floating(a.inputs[0]):
        return a.inputs[0]
    return None


REWRITES: Final = {
    "cse": Rewrite(("*",), _cse, "one node for every repeat of the same op on the same "
                   "inputs and attributes (common subexpressions)"),
    "fold_constants": Rewrite(("*",), _fold, "an op of constants only -> a constant of "
                              f"its value (results of up to {FOLD_MAX_SIZE} elements)"),
    "multiply_by_one": Rewrite(("multiply",), _identity(1.0, 0, 1), "x * 1 and 1 * x -> x"),
    "add_zero": Rewrite(("add",), _identity(0.0, 0, 1), "x + 0 and 0 + x -> x"),
    "subtract_zero": Rewrite(("subtract",), _identity(0.0, 1), "x - 0 -> x"),
    "divide_by_one": Rewrite(("divide",), _identity(1.0, 1), "x / 1 -> x"),
    "power_one": Rewrite(("power",), _identity(1.0, 1), "x ** 1 -> x"),
    "power_two": Rewrite(("power",), _power_two, "x ** 2 -> x * x (what NumPy computes)"),
    "double_negation": Rewrite(("negate",), _double_negation, "-(-x) -> x"),
    "add_self": Rewrite(("add",), _add_self, "x + x -> x * 2 (exact)"),
}
