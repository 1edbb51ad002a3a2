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
ops are defined by concern: :mod:`.reductions` (sum, mean, max), :mod:`.statistics`
(min, ptp, var, std, average, median, argmax, argmin), :mod:`.shaping`,
:mod:`.reorder` (flip, roll, moveaxis, rot90, ravel, atleast_nd, sort, argsort, cumsum,
cumprod), :mod:`.indexing`, :mod:`.along` (take_along_axis) and :mod:`.gather` (repeat,
tile, take, pad, diff). split and array_split, which return several nodes, are functions
of :mod:`.splitting` (NumPy's on a node call them), their ops one piece each; prod is in
:mod:`.products`.
"""

from __future__ import annotations

from typing import Final

import autodag
from autodag import OpDef

from .along import PUT_ALONG_AXIS_ADD, TAKE_ALONG_AXIS
from .gather import (
    DIFF,
    DIFF_GRAD,
    PAD,
    PAD_GRAD,
    REPEAT,
    REPEAT_GRAD,
    TAKE,
    TAKE_GRAD,
    TILE,
    TILE_GRAD,
)
from .indexing import GETITEM, SCATTER_ADD
from .onnx_rules import autodag_onnx_converters as autodag_onnx_converters
from .products import PROD, PROD_OTHERS
from .reductions import MAX, MAX_WEIGHTS, MEAN, MEAN_GRAD, SUM
from .reorder import (
    ARGSORT,
    ATLEAST_1D,
    ATLEAST_2D,
    ATLEAST_3D,
    CUMPROD,
    CUMSUM,
    FLIP,
    MOVEAXIS,
    RAVEL,
    ROLL,
    ROT90,
    SORT,
)
from .rewrites import autodag_rewrites as autodag_rewrites
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
from .splitting import ARRAY_SPLIT, SPLIT
from .statistics import (
    ARGMAX,
    ARGMIN,
    AVERAGE,
    AVERAGE_GRAD,
    MEDIAN,
    MEDIAN_WEIGHTS,
    MIN,
    PTP,
    STD,
    VAR,
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
    MIN,
    PROD,
    PTP,
    VAR,
    STD,
    AVERAGE,
    MEDIAN,
    ARGMAX,
    ARGMIN,
    ARGSORT,
    CUMSUM,
    CUMPROD,
    RAVEL,
    MOVEAXIS,
    FLIP,
    ROLL,
    ROT90,
    ATLEAST_1D,
    ATLEAST_2D,
    ATLEAST_3D,
    SORT,
    TAKE_ALONG_AXIS,
    REPEAT,
    TILE,
    TAKE,
    PAD,
    DIFF,
    SPLIT,
    ARRAY_SPLIT,
    # Helpers that backward rules call through xp; each is differentiable again.
    MEAN_GRAD,
    MAX_WEIGHTS,
    RESHAPE_LIKE,
    SCATTER_ADD,
    CONCAT_PART,
    CONCAT_PAD,
    AVERAGE_GRAD,
    MEDIAN_WEIGHTS,
    PUT_ALONG_AXIS_ADD,
    PROD_OTHERS,
    REPEAT_GRAD,
    TILE_GRAD,
    TAKE_GRAD,
    PAD_GRAD,
    DIFF_GRAD,
)


@autodag.hookimpl
def autodag_register_ops() -> list[OpDef]:
    """The ops of autodag-array."""
    return list(OPS)
