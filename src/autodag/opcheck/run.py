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
from .results import SampleReport
from .sample_graph import build
from .shape_check import check_static
from .symbolic_check import check_symbolic


def check_sample(state: OpState, label: str, sample: Sample, k: int, seed: int, *,
                 eps: float, rtol: float, atol: float, check_dtypes: bool) -> SampleReport:
    """Check sample ``k`` of the op; raise OpCheckError on its first defect."""
    case = Case.of(state, label, sample, k, seed, eps, rtol, atol)
    opdef = case.opdef
    values = [np.array(x, dtype=np.float64) if is_float(x) else copy.deepcopy(x)
              for x in case.inputs]
    out = forward(case, values, "float64 inputs")
    built = build(case, values)
    check_static(case, built, out, "float64 inputs")
    if opdef.differentiable and is_float(out):
        w = case.rng.standard_normal(np.shape(out))
        reference = check_gradients(case, values, out, w)
        if opdef.symbolic and built.wrt:
            check_symbolic(case, built, values, w, reference)
    if has_templates(case):
        check_inline(case, values, out)
    if check_dtypes and any(is_float(x) for x in values):
        check_float32(case, values)
    return case.report()
