"""Central finite differences in float64: the independent reference for gradient tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Array = np.ndarray[Any, np.dtype[np.float64]]


def numeric_grads(
    f: Callable[..., Any], args: Sequence[Any], eps: float = 1e-6
) -> list[Array]:
    """d sum(f(*args)) / d args[i] for every i, by central differences."""
    xs = [np.array(a, dtype=np.float64) for a in args]
    grads = []
    for i, x in enumerate(xs):
        g = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            orig = x[idx]
            x[idx] = orig + eps
            hi = float(np.sum(f(*xs)))
            x[idx] = orig - eps
            lo = float(np.sum(f(*xs)))
            x[idx] = orig
            g[idx] = (hi - lo) / (2 * eps)
        grads.append(g)
        xs[i] = x
    return grads
