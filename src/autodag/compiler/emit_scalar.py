"""The scalar function: a plan's IR printed for Python numbers, one line per op and
per gradient contribution, or a loop over each block the graph repeats.

Every rule is written out from its template and every value is a Python number, so no
gradient is ever None, needs summing to a shape or warns, and nothing is freed. It
returns None as soon as a value leaves Python numbers (``1 / 0.0`` gives a NumPy inf),
and the general function takes the call. A pure function of the IR and the loops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import limits
from .emit_loop import LoopCode, loop_backward, loop_forward, loop_gradients
from .emit_rules import Grads, emit_rules
from .ir import PlanIR
from .rolling import Loop
from .source import Line, Source, forward_expr

__all__ = ["emit_scalar", "scalar_source"]


def _forward(ir: PlanIR, i: int, val: list[str], src: list[str], lines: dict[int, Line],
             ns: dict[str, Any]) -> None:
    ins = ir.inputs[i]
    if ins is None:
        return
    args = [val[x] for x in ins]
    lines[len(src) + 1] = Line(i, tuple(args))
    expr = forward_expr(ir.order[i], i, ir.forward_templates[i], args, ns)
    src.append(f"    v{i} = {expr}")


def _backward(ir: PlanIR, i: int, val: list[str], emit: Any, grads: Grads) -> None:
    gi = grads.name.get(f"g{i}")
    ins = ir.inputs[i]
    if gi is None or ins is None or i not in ir.written:
        return
    emit_rules(emit, ir.written[i], ir.want[i], gi, [val[x] for x in ins], f"v{i}",
               [f"g{x}" for x in ins], grads)


def _unpack(ir: PlanIR) -> list[str]:
    """The leaves' values from ``L``, and the way out unless all are Python numbers."""
    if not ir.leaves:
        return []
    names = [f"v{i}" for i in ir.leaves]
    check = " or ".join(f"{x}.__class__ not in _PYR" for x in names)
    return [f"    {', '.join(names)}, = L", f"    if {check}: return None"]


def emit_scalar(ir: PlanIR, loops: Sequence[Loop]) -> Source | int:
    """``_scalar(L)``: both passes (or, without ``wrt``, the values only) for Python
    numbers, with ``loops`` written as loops; or the index of a loop that cannot be
    written so (the gradients reaching its last block do not match the loop's)."""
    n = len(ir.order)
    ns: dict[str, Any] = {}
    for w in ir.written.values():
        ns.update(w.names)
    src = ["def _scalar(L):", *_unpack(ir)]

    def emit(line: str) -> None:
        src.append("    " + line)

    lines: dict[int, Line] = {}
    # Constants are read from the namespace where they are used: no lines for them.
    val = [f"v{i}" for i in range(n)]
    for i in ir.constants:
        ns[f"c{i}"] = ir.order[i].value
        val[i] = f"c{i}"
    codes: list[LoopCode] = []
    pos = 0
    for L, loop in enumerate(loops):
        if loop.lags:
            return L  # the scalar function's loops read one block back at most
        for i in range(pos, loop.start):
            _forward(ir, i, val, src, lines, ns)
        code = loop_backward(ir, loop, L, val) if ir.grad_mode else LoopCode(L, [], [], [], [])
        if code is None:
            return L
        codes.append(code)
        loop_forward(ir, loop, code, val, src, lines, ns)
        pos = loop.end
    for i in range(pos, n):
        _forward(ir, i, val, src, lines, ns)
    # A NumPy scalar (from 1 / 0.0, say) stays one through every op that uses it:
    # operators keep it, and an op declaring templates promises its forward does too.
    # Every op is used by some output, so checking the outputs checks every value.
    emit("if " + " or ".join(f"{val[s]}.__class__ not in _PYR" for s in ir.outputs)
         + ": return None")
    outs = ", ".join(val[s] for s in ir.outputs)
    if not ir.grad_mode:
        emit(f"return ({outs},), ()")
        return Source("\n".join(src) + "\n", ns, lines)
    emit(f"g{ir.target} = 1.0")
    grads = Grads({f"g{ir.target}": f"g{ir.target}"})
    end = n
    for L in range(len(loops) - 1, -1, -1):
        loop = loops[L]
        for i in sorted((i for i in ir.want if loop.end <= i < end), reverse=True):
            _backward(ir, i, val, emit, grads)
        if not loop_gradients(loop, emit, grads, codes[L]):
            return L
        end = loop.start
    for i in sorted((i for i in ir.want if i < end), reverse=True):
        _backward(ir, i, val, emit, grads)
    g = [grads.name.get(f"g{s}", "None") if s is not None else "None" for s in ir.wrt or ()]
    emit(f"return ({outs},), ({', '.join(g)}{',' if g else ''})")
    return Source("\n".join(src) + "\n", ns, lines)


def scalar_source(ir: PlanIR, loops: Sequence[Loop]) -> Source:
    """The scalar function with as many of ``loops`` as can be written as loops: a
    loop whose last block's gradients arrive unlike the others' (from code after the
    loop) is tried once more without its last block, then written straight-line."""
    loops = list(loops)
    shortened: set[int] = set()
    while True:
        got = emit_scalar(ir, loops)
        if isinstance(got, Source):
            return got
        lp = loops[got]
        if lp.start not in shortened and lp.reps > limits.MIN_REPS:
            shortened.add(lp.start)
            loops[got] = Loop(lp.start, lp.period, lp.reps - 1, lp.refs)
        else:
            del loops[got]
