"""What the math plugin's modules share: the NumPy fast path beside the array-API form,
forward-rule factories for unary and binary functions, and sample generators.

NumPy arrays and Python numbers compute with NumPy (or ``math``); another library's
arrays with the function of their own namespace (``autodag.backend.namespace_of``),
never converted to NumPy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np

from autodag import OpDef, Sample
from autodag.backend import is_array, namespace_of

__all__ = ["KINDS", "NUMPY", "PY_NUMBERS", "Rng", "as_arrays", "binary_samples", "elementwise",
           "fast", "floated", "foreign", "two", "unary_samples"]

Rng = np.random.Generator
PY_NUMBERS: Final = (bool, int, float, complex)
# The classes of NumPy's and Python's values: one set lookup finds the NumPy fast path
# (``is_array`` asks more, for the rest: subclasses, lists, other libraries' arrays).
NUMPY: Final = frozenset({np.ndarray, bool, int, float, complex, *np.sctypeDict.values()})
KINDS: Final = [bool, int, float, complex]  # Python numbers' kinds, narrowest first


def foreign(x: Any) -> bool:
    """Whether ``x`` is an array of a library other than NumPy (ndarrays cost one test)."""
    return x.__class__ not in NUMPY and is_array(x)


def floated(xp: Any, a: Any) -> Any:
    """An array of another library in floating point, as NumPy computes these functions
    (float64 for integers and bools, where the standard's functions refuse them)."""
    if a.__class__ in PY_NUMBERS or xp.isdtype(a.dtype, ("real floating", "complex floating")):
        return a
    return xp.astype(a, xp.float64)


def fast(np_fn: Callable[[Any], Any], math_fn: Callable[[float], float],
         floating: bool = True, name: str = "") -> Callable[[Any], Any]:
    """A forward rule that keeps Python floats as Python floats (scalar graphs run fast),
    computes NumPy values with ``np_fn`` and another library's arrays with the standard's
    function ``name`` (NumPy's name by default), in floating point when ``floating``."""
    name = name or np_fn.__name__
    is_float = floating

    def forward(a: Any) -> Any:
        if type(a) is float:
            try:
                return math_fn(a)
            except (ValueError, OverflowError):
                pass  # outside math's domain: NumPy's answer (inf, nan) instead
        if a.__class__ in NUMPY or not is_array(a):
            return np_fn(a)
        xp = namespace_of(a)
        return getattr(xp, name)(floated(xp, a) if is_float else a)

    forward.__name__ = np_fn.__name__
    return forward


def two(np_fn: Callable[[Any, Any], Any], name: str = "",
        floating: bool = False) -> Callable[[Any, Any], Any]:
    """``np_fn`` for NumPy values, the standard's function ``name`` (NumPy's name by
    default) of another library's namespace for its arrays (which take one Python number
    beside an array), in floating point when ``floating``."""
    name = name or np_fn.__name__

    def forward(a: Any, b: Any) -> Any:
        if ((a.__class__ in NUMPY or not is_array(a))
                and (b.__class__ in NUMPY or not is_array(b))):
            return np_fn(a, b)
        xp = namespace_of(a, b)
        if floating:
            a, b = floated(xp, a), floated(xp, b)
        return getattr(xp, name)(a, b)

    forward.__name__ = np_fn.__name__
    return forward


def as_arrays(xp: Any, *values: Any) -> list[Any]:
    """``values`` with one Python number made an array of ``xp`` when no value is an
    array: a library takes Python numbers beside an array, never numbers alone. The one
    of the widest kind (as NumPy promotes them: 1.0 and 0 give a float), so that the
    others are numbers of a kind the array takes."""
    if not all(v.__class__ in PY_NUMBERS for v in values):
        return list(values)
    widest = max(range(len(values)), key=lambda k: KINDS.index(values[k].__class__))
    return [xp.asarray(v) if k == widest else v for k, v in enumerate(values)]


# --- sample inputs for autodag.testing.check_op -------------------------------------
def unary_samples(transform: Callable[[Any], Any] = lambda x: x) -> Callable[[Rng], list[Sample]]:
    """Samples of one input: standard normal values of a few shapes, through ``transform``."""
    def samples(rng: Rng) -> list[Sample]:
        return [
            Sample((transform(rng.standard_normal((2, 3))),)),
            Sample((transform(rng.standard_normal(())),)),
            Sample((transform(rng.standard_normal((4, 1, 2))),)),
        ]

    return samples


def binary_samples(rng: Rng) -> list[Sample]:
    """Samples of two inputs that broadcast, ties last."""
    r = rng.standard_normal
    a = r((2, 3))
    return [
        Sample((a, r((2, 3)))),
        Sample((r((2, 3)), r((3,)))),
        Sample((r((2, 1)), r((1, 4)))),
        Sample((r(()), r((2, 2)))),
        Sample((a, a.copy())),  # ties
    ]


def elementwise(
    name: str, forward: Callable[..., Any], rule: Callable[..., Any],
    samples: Callable[[Rng], list[Sample]], doc: str,
) -> OpDef:
    """A differentiable function of one input ``x`` on any array-API backend."""
    return OpDef(name=name, arity=1, forward=forward, backward=(rule,), input_names=("x",),
                 samples=samples, doc=doc, array_api=True)
