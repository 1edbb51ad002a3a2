"""The ``array`` plugin: reductions, shape ops, indexing, concatenate/stack, stop_gradient.

Ops with an axis take it as their NumPy namesakes do (None, an int, a tuple of ints,
negative ones counting from the end); one NumPy refuses is a ``ShapeMismatchError``
naming the op, the axis and the input's shape, checked only once NumPy has refused it,
so that a valid call costs nothing more.

Backward rules use only Python operators and ``xp.<op>``, and avoid static shapes:
where a gradient must take the shape of an input, a "like" op does it at run time
(``broadcast_like`` and ``unbroadcast`` from the built-in plugin, ``reshape_like``,
``mean_grad``, ``scatter_add``, ``concat_part``/``concat_pad`` here). Each helper has
its own backward rule, so every op can be differentiated again.

Every op runs on any array-API backend (``array_api=True``): NumPy arrays and Python
numbers take NumPy, another library's arrays its own namespace, never converted. The
ops are defined by concern in :mod:`.reductions`, :mod:`.shaping` and :mod:`.indexing`.
"""

from __future__ import annotations

from typing import Final

import autodag
from autodag import OpDef

from .indexing import GETITEM, SCATTER_ADD
from .reductions import MAX, MAX_WEIGHTS, MEAN, MEAN_GRAD, SUM
from .shaping import (
    BROADCAST_TO,
    CONCAT_PAD,
    CONCAT_PART,
    CONCATENATE,
    RESHAPE,
    RESHAPE_LIKE,
    STACK,
    STOP_GRADIENT,
    TRANSPOSE,
)

__all__ = ["OPS", "autodag_register_ops"]

OPS: Final[tuple[OpDef, ...]] = (
    SUM,
    MEAN,
    MAX,
    RESHAPE,
    TRANSPOSE,
    BROADCAST_TO,
    GETITEM,
    CONCATENATE,
    STACK,
    STOP_GRADIENT,
    # Helpers that backward rules call through xp; each is differentiable again.
    MEAN_GRAD,
    MAX_WEIGHTS,
    RESHAPE_LIKE,
    SCATTER_ADD,
    CONCAT_PART,
    CONCAT_PAD,
)


@autodag.hookimpl
def autodag_register_ops() -> list[OpDef]:
    """The ops of autodag-array."""
    return list(OPS)
