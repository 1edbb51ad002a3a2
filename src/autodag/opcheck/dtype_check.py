"""The float32 check: float32 inputs give a float32 value, static shapes and gradients."""

from __future__ import annotations

from typing import Any

import numpy as np

from .calls import backward, forward
from .case import Case, is_float
from .results import FLOAT32
from .sample_graph import build
from .shape_check import check_static


def check_float32(case: Case, values: list[Any]) -> None:
    """The sample again with its float inputs as float32."""
    v32 = [np.asarray(x, dtype=np.float32) if is_float(x) else x for x in values]
    out = forward(case, v32, "float32 inputs")
    check_static(case, build(case, v32), out, "float32 inputs")
    case.passed(FLOAT32, None)
    if not is_float(out):
        return
    if np.result_type(out) != np.float32:
        raise case.fail(f"float32 inputs gave a {np.result_type(out)} value, not float32")
    if not case.opdef.differentiable:
        return
    g = case.rng.standard_normal(np.shape(out)).astype(np.float32)
    grads = backward(case, g, out, v32, "float32 inputs")
    for i, (x, gi) in enumerate(zip(v32, grads, strict=True)):
        if gi is None or not is_float(x) or type(gi) in (int, float):
            continue  # Python scalars are weakly typed: they keep float32 float32
        if np.result_type(gi) != np.float32:
            raise case.fail(
                f"float32 inputs gave a {np.result_type(gi)} gradient for "
                f"{case.input_name(i)}, not float32"
            )
