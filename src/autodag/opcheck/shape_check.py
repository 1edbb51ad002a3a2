"""The shape inference check: static shapes (what ``autodag.gradients``, ``autodag.jvp``
and ``xp.shape`` rely on) against the shape and dtype the forward really returns."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..shapes import ShapeInferenceError, StaticShapes
from .case import Case
from .results import STATIC_SHAPES
from .sample_graph import SampleGraph


def check_static(case: Case, b: SampleGraph, out: Any, what: str) -> None:
    """Static shape and dtype of the op node against ``out``, the forward's value."""
    shapes = StaticShapes()
    info = shapes.info(b.y)
    if info is None:
        try:
            shapes.require(b.y, "by check_op")
        except ShapeInferenceError as exc:
            case.notes.append(f"static shapes ({what}) not inferred: {exc}")
        return
    shape, dtype, _, _ = info
    real_shape, real_dtype = tuple(np.shape(out)), np.result_type(out)
    if shape != real_shape or dtype != real_dtype:
        raise case.fail(
            f"static shape inference gives shape {shape} and dtype {dtype} for the "
            f"output ({what}), but forward gives shape {real_shape} and dtype "
            f"{real_dtype}. Inference runs forward on ones of the input shapes (Constants "
            f"keep their values) before a graph runs, and autodag.gradients, autodag.jvp "
            f"and xp.shape rely on it: the output's shape and dtype must follow from the "
            f"inputs' shapes and dtypes and the attributes, not from input values"
        )
    case.passed(STATIC_SHAPES, None)
