"""The numeric gradient check: the backward rule against central differences of the
forward; and the central differences the derivative checks compare with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from .calls import backward, bind, forward, reduced
from .case import Case, is_float
from .results import GRADIENTS

#: Step ratio and tolerances of the test that finite differences do not depend on the
#: step (no kink or tie within it): the test of tests/test_second_order_ops.py.
COARSE: Final = 4.0
_STABLE_RTOL: Final = 1e-3
_STABLE_ATOL: Final = 1e-4


def check_gradients(case: Case, values: list[Any], out: Any, w: Any) -> list[Any]:
    """The backward rule against central differences; its reduced gradients."""
    grads = backward(case, w, out, values, "float64 inputs")
    worst = 0.0
    reference: list[Any] = []
    for i, x in enumerate(values):
        if not is_float(x):
            reference.append(None)
            continue
        analytic = reduced(case, i, grads[i], np.shape(x))
        reference.append(analytic)
        numeric = central_differences(case, values, i, w)
        worst = max(worst, case.compare(analytic, numeric, f"gradient of {case.input_name(i)}",
                                        "backward rule", "central differences"))
    case.passed(GRADIENTS, worst)
    return reference


def central_differences(case: Case, values: list[Any], i: int, w: Any) -> Any:
    """The gradient of ``sum(forward * w)`` for input ``i``, one element at a time."""
    x, eps = values[i], case.eps
    numeric = np.zeros(np.shape(x))
    ins, attrs = bind(case, values)
    fwd = case.opdef.forward

    def f(v: Any) -> float:
        args = list(ins)
        args[i] = v
        return float(np.sum(np.asarray(fwd(*args, **attrs), dtype=np.float64) * w))

    for idx in np.ndindex(np.shape(x)):
        v = np.array(x, dtype=np.float64)
        v[idx] += eps
        hi = f(v)
        v[idx] -= 2 * eps
        numeric[idx] = (hi - f(v)) / (2 * eps)
    return numeric


def directional(case: Case, values: list[Any], moves: Sequence[tuple[int, Any]],
                eps: float) -> Any:
    """Central differences of forward along the tangents ``moves`` (position, t)."""
    def at(sign: float) -> Any:
        moved = list(values)
        for k, t in moves:
            moved[k] = values[k] + sign * eps * t
        return np.asarray(forward(case, moved, "finite differences"), dtype=np.float64)

    return (at(1.0) - at(-1.0)) / (2 * eps)


def gradient_differences(case: Case, values: list[Any], w: Any, wrt: Sequence[int],
                         vs: Sequence[Any], eps: float) -> list[Any]:
    """Central differences of the rule's gradients along ``vs``: H v, numerically."""
    def at(sign: float) -> list[Any]:
        moved = list(values)
        for k, v in zip(wrt, vs, strict=True):
            moved[k] = values[k] + sign * eps * v
        out = forward(case, moved, "second-order finite differences")
        grads = backward(case, w, out, moved, "second-order finite differences")
        return [reduced(case, k, grads[k], np.shape(values[k])) for k in wrt]

    return [(hi - lo) / (2 * eps) for hi, lo in zip(at(1.0), at(-1.0), strict=True)]


def stable(fine: Any, coarse: Any) -> bool:
    """Whether finite differences hardly depend on the step: no kink or tie within it."""
    a, b = np.asarray(fine), np.asarray(coarse)
    return bool(np.all(np.isfinite(a)) and np.allclose(a, b, rtol=_STABLE_RTOL,
                                                       atol=_STABLE_ATOL))
