"""Small NumPy helpers shared by the engine and the built-in plugin."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["grad_dtype", "owned", "sum_to"]


def sum_to(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` over the axes along which a value of ``shape`` was broadcast.

    Raises ValueError when ``g`` cannot have come from broadcasting ``shape``.
    """
    gs = np.shape(g)
    if gs == shape:
        return g
    lead = len(gs) - len(shape)
    if lead < 0 or any(s != 1 and s != gs[lead + i] for i, s in enumerate(shape)):
        # A rule may return a smaller gradient that broadcasts up (a scalar zero, say).
        if np.broadcast_shapes(gs, shape) == shape:
            return np.broadcast_to(g, shape)
        raise ValueError(f"gradient of shape {gs} does not reduce to shape {shape}")
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and gs[lead + i] != 1
    )
    r = np.sum(g, axis=axes)
    return np.reshape(r, shape)


def grad_dtype(value: Any) -> np.dtype[Any]:
    """The dtype of a gradient for ``value``: its own if floating, else float64."""
    if isinstance(value, float):
        return np.dtype(np.float64)
    dt = np.result_type(value)
    return dt if dt.kind in "fc" else np.dtype(np.float64)


def owned(g: Any) -> Any:
    """``g``, or a copy of it when it is a read-only or broadcast (zero-stride) view.

    Gradients handed to the caller are theirs to write to; a rule may return
    ``np.broadcast_to`` of a smaller array, which NumPy marks read-only.
    """
    if g.__class__ is np.ndarray and (
        not g.flags.writeable or (g.ndim and 0 in g.strides and g.size > 1)
    ):
        return np.array(g)
    return g
