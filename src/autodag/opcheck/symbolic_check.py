"""The rule run on nodes: ``autodag.gradients`` against the rule on numbers,
``autodag.jvp`` and a Hessian-vector product against central differences."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..execute import evaluate
from ..forward import jvp
from ..nodes import Node
from ..symbolic import gradients
from .case import Case
from .failures import attempt
from .numeric import COARSE, directional, gradient_differences, stable
from .results import JVP, SECOND_ORDER, SECOND_ORDER_BUILT, SYMBOLIC
from .sample_graph import SampleGraph


def check_symbolic(case: Case, b: SampleGraph, values: list[Any], w: Any,
                   reference: list[Any], order: int = 2) -> None:
    """Gradients, forward mode and (``order`` 2) second order through the rule on nodes."""
    xs = b.xs()
    start = len(b.graph.nodes)
    gs = attempt(case, "autodag.gradients (the symbolic gradient of sum(out * w))",
                 lambda: gradients(b.y, xs, grad_ys=w))
    # The rule of the op node is the only one that ran: every op built is its own.
    case.state.record(b.graph.nodes[start:])
    got = attempt(case, "evaluating the symbolic gradient", lambda: evaluate(gs))
    worst = 0.0
    for k, gk in zip(b.wrt, got, strict=True):
        worst = max(worst, case.compare(
            gk, reference[k], f"the symbolic gradient (autodag.gradients) of "
            f"{case.input_name(k)}", "autodag.gradients", "the backward rule on numbers"))
    case.passed(SYMBOLIC, worst)
    case.running = JVP
    check_jvp(case, b, values, w, reference)
    if order >= 2:
        case.running = SECOND_ORDER
        check_second_order(case, b, gs, values, w)


def check_jvp(case: Case, b: SampleGraph, values: list[Any], w: Any,
              reference: list[Any]) -> None:
    """``autodag.jvp`` along a random tangent against central differences of forward."""
    ts = [case.rng.standard_normal(np.shape(values[k])) for k in b.wrt]
    start = len(b.graph.nodes)
    got = attempt(case, "autodag.jvp (forward mode along a random tangent)",
                  lambda: jvp(b.y, b.xs(), ts))
    if case.opdef.jvp is not None:  # else the nodes are the backward rule's again
        case.state.record(b.graph.nodes[start:])
    moves = list(zip(b.wrt, ts, strict=True))
    fd = directional(case, values, moves, case.eps)
    what = "the forward-mode derivative (autodag.jvp) along a random tangent"
    if stable(fd, directional(case, values, moves, COARSE * case.eps)):
        case.passed(JVP, case.compare(got, fd, what, "autodag.jvp",
                                      "central differences of forward"))
        return
    got = np.asarray(got, dtype=np.float64)
    if got.shape != np.shape(fd):
        raise case.fail(f"{what} has shape {got.shape}, but the output has {np.shape(fd)}")
    _check_jvp_transposed(case, got, w, [np.asarray(reference[k]) * t for k, t in moves], what)


def _check_jvp_transposed(case: Case, got: Any, w: Any, terms: list[Any], what: str) -> None:
    # A kink or tie within the step: the transpose identity <w, J t> = <J^T w, t>
    # still holds exactly, with J^T w from the rule on numbers (``terms``: J^T w * t).
    lhs = float(np.sum(got * w))
    rhs = float(sum(np.sum(t) for t in terms))
    scale = float(np.sum(np.abs(got * w))) + sum(float(np.sum(np.abs(t))) for t in terms)
    err = abs(lhs - rhs)
    if not err <= case.atol + case.rtol * scale:
        raise case.fail(
            f"{what} disagrees with the backward rule: <w, J t> is {lhs:.8g} from "
            f"autodag.jvp, <J^T w, t> is {rhs:.8g} from the rule (finite differences "
            f"depend on the step at this sample, so only this dot product is compared)")
    case.notes.append("jvp: central differences depend on the step here (a kink or "
                      "tie), so only <w, J t> = <J^T w, t> was compared")
    case.passed(JVP, err)


def check_second_order(case: Case, b: SampleGraph, gs: list[Node], values: list[Any],
                       w: Any) -> None:
    """A Hessian-vector product (gradients of ``gs``) against differences of the rule."""
    vs = [case.rng.standard_normal(np.shape(values[k])) for k in b.wrt]
    hv = attempt(
        case, "second order (autodag.gradients of the symbolic gradient, a Hessian-vector "
        "product)", lambda: evaluate(gradients(gs, b.xs(), grad_ys=vs)))
    fd = gradient_differences(case, values, w, b.wrt, vs, case.eps)
    coarse = gradient_differences(case, values, w, b.wrt, vs, COARSE * case.eps)
    is_stable = all(stable(f, c) for f, c in zip(fd, coarse, strict=True))
    worst = 0.0
    for k, got, want in zip(b.wrt, hv, fd, strict=True):
        what = f"the second derivative (Hessian-vector product) for {case.input_name(k)}"
        if is_stable:
            worst = max(worst, case.compare(got, want, what, "autodag.gradients of the gradient",
                                            "central differences of the backward rule"))
        elif np.shape(got) != np.shape(values[k]):
            raise case.fail(f"{what} has shape {np.shape(got)}, but the input has "
                            f"{np.shape(values[k])}")
    if is_stable:
        case.passed(SECOND_ORDER, worst)
        return
    case.passed(SECOND_ORDER_BUILT, None)
    case.notes.append("second order: central differences of the gradient depend on the "
                      "step here (a kink or tie: no second derivative), so the "
                      "Hessian-vector product was built and evaluated, not compared")
