"""The inline/compiled check: ``autodag.compile``, which writes the op's inline
templates into its generated code, against the interpreter, which calls the rules."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..compiled import compile as compile_program
from ..execute import evaluate, grad
from ..nodes import Constant, Node
from .case import Case, is_float
from .failures import attempt
from .results import INLINE, OpCheckError
from .sample_graph import build


def has_templates(case: Case) -> bool:
    """Whether the op declares an inline template for its forward or a backward rule."""
    opdef = case.opdef
    return any(t is not None for t in (opdef.inline, *(opdef.inline_vjps or ())))


def check_inline(case: Case, values: list[Any], out: Any) -> None:
    """The compiled program against the rules, on arrays (and Python floats for scalars)."""
    runs: list[tuple[str, list[Any]]] = [("arrays", values)]
    floats = [v for v in values if is_float(v)]
    if floats and all(np.ndim(v) == 0 for v in floats):
        # Python floats take the scalar function, where the templates are plain Python.
        runs.append(("Python floats", [float(v) if is_float(v) else v for v in values]))
    worst = 0.0
    for what, vals in runs:
        worst = max(worst, _inline_run(case, what, vals, out))
    case.passed(INLINE, worst)


def _inline_run(case: Case, what: str, vals: list[Any], out: Any) -> float:
    opdef = case.opdef
    b = build(case, vals)
    xs = b.xs() if opdef.differentiable and is_float(out) else []
    s: Node = b.y
    if xs:
        w = case.rng.standard_normal(np.shape(out))
        with b.graph:
            s = b.y * Constant(float(w) if np.ndim(w) == 0 else w)
    inputs = list(b.variables.values())
    prog = attempt(case, f"autodag.compile ({what})",
                   lambda: compile_program([s, b.y], wrt=xs, inputs=inputs))
    (_, got_y), got_g = attempt(case, f"the compiled program ({what})",
                                lambda: prog(*(v.value for v in inputs)))
    want_y = attempt(case, f"autodag.evaluate ({what})", lambda: evaluate(b.y))
    want_g = attempt(case, f"autodag.grad ({what})", lambda: grad(s, xs)) if xs else []
    inline = opdef.inline
    worst = _compare_template(
        case, got_y, want_y, f"the compiled value ({what})",
        f"; the template inline={inline!r} must compute exactly what forward computes"
        if inline is not None else "")
    templates = opdef.inline_vjps or ()
    for k, got, want in zip(b.wrt, got_g, want_g, strict=True):
        tpl = templates[k] if k < len(templates) else None
        worst = max(worst, _compare_template(
            case, got, want, f"the compiled gradient of {case.input_name(k)} ({what})",
            f"; the template inline_vjps[{k}]={tpl!r} must compute exactly what backward "
            f"rule {k} computes" if tpl is not None else ""))
    return worst


def _compare_template(case: Case, got: Any, want: Any, what: str, hint: str) -> float:
    try:
        return case.compare(got, want, what, "autodag.compile", "the interpreter")
    except OpCheckError as exc:
        raise OpCheckError(f"{exc}{hint}") from None
