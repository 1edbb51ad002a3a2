"""The math plugin's kernel forms, for the fused kernels of compiled programs.

Comparisons, ``where``, ``maximum``/``minimum`` (propagating NaN as NumPy's do),
``sqrt``, ``abs``, ``square`` and ``reciprocal``: the ops numba's compiled loops compute
as fast as NumPy or faster. NumPy's exp, log, tanh, sin... are vectorized and several
times faster than the scalar ``math`` functions a kernel would call
(benchmarks/fusion_crossover.py), so a chain is cut at them rather than fused.
"""

from __future__ import annotations

from typing import Final

import autodag
from autodag import KernelForm

__all__ = ["FORMS", "autodag_kernel_forms"]

_COMPARISONS: Final = {
    "greater": ">", "greater_equal": ">=", "less": "<", "less_equal": "<=",
    "equal": "==", "not_equal": "!=",
}

FORMS: Final = {
    **{name: KernelForm(f"{{0}} {op} {{1}}") for name, op in _COMPARISONS.items()},
    "sqrt": KernelForm("math.sqrt({0}) if {0} >= 0 else math.nan"),
    "abs": KernelForm("abs({0})"),
    "square": KernelForm("{0} * {0}"),
    "reciprocal": KernelForm("1 / {0}"),
    "where": KernelForm("{1} if {0} else {2}"),
    # a where a >= b or a is NaN, else b (which is NaN when b is).
    "maximum": KernelForm("{0} if ({0} >= {1} or {0} != {0}) else {1}"),
    "minimum": KernelForm("{0} if ({0} <= {1} or {0} != {0}) else {1}"),
}


@autodag.hookimpl
def autodag_kernel_forms() -> dict[str, KernelForm]:
    """The kernel forms of the math plugin's elementwise ops."""
    return dict(FORMS)
