"""Every check of one sample, in order; the report of what passed."""

from __future__ import annotations

import copy

import numpy as np

from ..opdef import Sample
from .calls import forward
from .case import Case, is_float
from .dtype_check import check_float32
from .inline_check import check_inline, has_templates
from .numeric import check_gradients
from .recording import OpState
from .results import (
    FLOAT32,
    FORWARD,
    GRADIENTS,
    INLINE,
    STATIC_SHAPES,
    SYMBOLIC,
    OpCheckError,
    SampleReport,
)
from .sample_graph import build
from .shape_check import check_static
from .symbolic_check import check_symbolic


def check_sample(state: OpState, label: str, sample: Sample, k: int, seed: int, *,
                 eps: float, rtol: float, atol: float, check_dtypes: bool,
                 order: int = 2) -> SampleReport:
    """Check sample ``k`` of the op; raise OpCheckError on its first defect."""
    case = Case.of(state, label, sample, k, seed, eps, rtol, atol)
    try:
        _run(case, check_dtypes, order)
    except OpCheckError as exc:
        # Machine-readable reports (autodag check --json) say which check failed.
        exc.check = case.running or FORWARD
        exc.report = case.report()
        raise
    return case.report()


def _run(case: Case, check_dtypes: bool, order: int) -> None:
    opdef = case.opdef
    values = [np.array(x, dtype=np.float64) if is_float(x) else copy.deepcopy(x)
              for x in case.inputs]
    out = forward(case, values, "float64 inputs")
    case.running = STATIC_SHAPES
    built = build(case, values)
    check_static(case, built, out, "float64 inputs")
    if opdef.differentiable and is_float(out):
        w = case.rng.standard_normal(np.shape(out))
        case.running = GRADIENTS
        reference = check_gradients(case, values, out, w)
        if opdef.symbolic and built.wrt:
            case.running = SYMBOLIC
            check_symbolic(case, built, values, w, reference, order=order)
    if has_templates(case):
        case.running = INLINE
        check_inline(case, values, out)
    if check_dtypes and any(is_float(x) for x in values):
        case.running = FLOAT32
        check_float32(case, values)
