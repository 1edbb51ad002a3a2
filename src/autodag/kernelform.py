"""``KernelForm``: how one op reads inside a fused elementwise kernel, as plain data.

Plugins return forms from the ``autodag_kernel_forms`` hook (op name -> form), as they
return ops from ``autodag_register_ops``. With the ``fusion`` extra (numba) installed,
``autodag.compile`` writes each chain of ops that have forms as one scalar Python
expression, compiled by numba into a ufunc: one vectorized pass over the arrays instead
of one full-size temporary array per op.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["KernelForm", "number"]

#: A form's text: operands as ``{0}``, ``{1}``...; or a function of the operands' texts
#: and the node's attributes returning the text, or None where the node cannot be fused.
Expr = str | Callable[[Sequence[str], Mapping[str, Any]], "str | None"]

#: How a Python-number operand is written: its value typed as the operands' dtype.
_TYPED: Final = ("float32(", "float64(")


@dataclass(frozen=True)
class KernelForm:
    """An op's value on scalars, as a Python expression over its operands' expressions.

    ``expr`` is a template such as ``"{0} * {1}"`` or a function ``(operands, attrs) ->
    text or None``. The text may use Python's operators, ``a if c else b`` and ``math``'s
    functions; numba compiles it for the operands' dtypes, and the kernel's result takes
    the op's dtype. A Python-number constant operand arrives as a typed literal
    (``float32(3.0)``: ``number`` reads its value). The form must give the op's value and
    its NaN and inf results for every input (a kernel never raises on 1/0: neither may
    the op).
    """

    expr: Expr

    def __post_init__(self) -> None:
        if not (isinstance(self.expr, str) or callable(self.expr)):
            raise TypeError(f"KernelForm.expr must be a template string or a function, "
                            f"got {self.expr!r}")

    def render(self, operands: Sequence[str], attrs: Mapping[str, Any]) -> str | None:
        """The node's expression over its operands' expressions, or None."""
        if isinstance(self.expr, str):
            return f"({self.expr.format(*operands)})"
        text = self.expr(tuple(operands), attrs)
        return None if text is None else f"({text})"


def number(operand: str) -> float | None:
    """The value of an operand that is a Python-number constant's literal, else None."""
    if not (operand.startswith(_TYPED) and operand.endswith(")")):
        return None
    try:
        return float(operand[8:-1])
    except ValueError:
        return None
