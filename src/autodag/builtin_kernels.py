"""Kernel forms of the built-in elementwise ops, given through ``autodag_kernel_forms``.

Each computes on scalars what the op's forward rule computes on arrays, with the same
NaN and inf results (numba's ufuncs, like NumPy's, answer inf for 1/0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from .kernelform import KernelForm, number

__all__ = ["FORMS"]


def _int_power(a: str, n: int, like: str) -> str:
    """``a ** n`` for an integer ``n`` as products (numba's float ** int), as NumPy
    computes x**2: within an ulp or two of pow, several times faster. A negative power
    is a quotient, so that 0 ** -2 is inf (numba's float ** -2 raises)."""
    if n >= 0:
        return f"{a} ** {n}"
    one = f"{like.split('(')[0]}(1.0)"  # 1 in the exponent's type: float32 stays float32
    return f"{one} / {a} ** {-n}"


def _power(args: Sequence[str], attrs: Mapping[str, Any]) -> str:
    a, b = args
    n = number(b)
    if n is not None and n.is_integer() and abs(n) <= 16:
        return _int_power(a, int(n), b)
    return f"{a} ** {b}"


def _power_base_grad(args: Sequence[str], attrs: Mapping[str, Any]) -> str | None:
    a, b = args
    n = number(b)
    if n is None:
        return f"{b} if {b} == 0 else {b} * {a} ** ({b} - 1)"
    if n in (0.0, 1.0):
        return None  # a constant (0, or 1 even where a is nan): nothing to fuse
    if n.is_integer() and abs(n) <= 16:
        return f"{b} * {_int_power(a, int(n) - 1, b)}"
    return f"{b} * {a} ** ({b} - 1)"


FORMS: Final = {
    "add": KernelForm("{0} + {1}"),
    "subtract": KernelForm("{0} - {1}"),
    "negate": KernelForm("-{0}"),
    "multiply": KernelForm("{0} * {1}"),
    "divide": KernelForm("{0} / {1}"),
    "power": KernelForm(_power),
    "power_base_grad": KernelForm(_power_base_grad),
    # The compiler broadcasts a kernel's result to its node's shape.
    "broadcast_like": KernelForm("{0}"),
}
