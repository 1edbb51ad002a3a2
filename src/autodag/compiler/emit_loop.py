"""A repeated block of a scalar function written as a loop: the forward loop saving
what each block's backward reads, and the backward loop over the saved values.

Loop ``L``'s locals: ``b{L}_3`` the value at position 3 of the block, ``p{L}_3`` the one
carried in from the previous block; ``d{L}_3`` the gradient of ``b{L}_3`` and
``n{L}_3`` the gradient the block passes back for ``p{L}_3``. Gradients of nodes before
the loop (``g5``) gather every block's share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..nodes import Constant
from .emit_rules import Grads, add_to, emit_rules
from .ir import PlanIR
from .rolling import Loop, Ref
from .source import Line, forward_expr

__all__ = ["LoopCode", "loop_backward", "loop_forward", "loop_gradients"]


class LoopCode(NamedTuple):
    """A loop's backward body and what it needs around it."""

    number: int
    body: list[str]
    #: Block positions whose gradients pass from each block to the previous one.
    carried: list[int]
    #: Gradients of nodes before the loop that every block adds to.
    fixed: list[str]
    #: The values each block keeps for its backward pass.
    saved: list[str]


def ref_name(ir: PlanIR, loop: Loop, L: int, ref: Ref, val: list[str]) -> str:
    """The name an input of the block is read from."""
    kind, x = ref
    if kind == "local":
        s = loop.start + x
        return f"c{s}" if isinstance(ir.order[s], Constant) else f"b{L}_{x}"
    return f"p{L}_{x}" if kind == "carry" else val[x]


def loop_backward(ir: PlanIR, loop: Loop, L: int, val: list[str]) -> LoopCode | None:
    """The backward pass of one block, as the body of a loop over the blocks."""
    s = loop.start
    keys = {"local": f"d{L}_", "carry": f"n{L}_", "fixed": "g"}
    carried = loop.carried
    fixed = {f"g{x}" for refs in loop.refs if refs for kind, x in refs if kind == "fixed"}
    # The gradients a block passes back decide which arrive at the next one: settle
    # on the positions that get one whenever they give one.
    for _ in range(len(carried) + 1):
        body: list[str] = []
        grads = Grads({f"d{L}_{r}": f"d{L}_{r}" for r in carried})
        grads.name.update((k, k) for k in fixed)
        for j in reversed(range(loop.period)):
            i, refs = s + j, loop.refs[j]
            gi = grads.name.get(f"d{L}_{j}")
            if refs is None or i not in ir.written or gi is None:
                continue
            emit_rules(body.append, ir.written[i], ir.want[i], gi,
                       [ref_name(ir, loop, L, r, val) for r in refs], f"b{L}_{j}",
                       [f"{keys[kind]}{x}" for kind, x in refs], grads)
        passed = [r for r in carried if f"n{L}_{r}" in grads.name]
        if passed == carried:
            break
        carried = passed
    else:
        return None
    if carried:
        body.append(f"{', '.join(f'd{L}_{r}' for r in carried)}, = "
                    f"{', '.join(grads.name[f'n{L}_{r}'] for r in carried)},")
    own = (f"b{L}_", f"p{L}_")
    saved = sorted(n for n in grads.reads if n.startswith(own))
    return LoopCode(L, body, carried, sorted(grads.touched & fixed), saved)


def loop_forward(ir: PlanIR, loop: Loop, code: LoopCode, val: list[str],
                 src: list[str], lines: dict[int, Line], ns: dict[str, object]) -> None:
    """The forward loop over the blocks, keeping what each block's backward reads;
    afterwards the last block's values are what follows the loop reads."""
    s, p, e, L = loop.start, loop.period, loop.end, code.number
    carried = loop.carried
    out = src.append
    if carried:
        out(f"    {', '.join(f'p{L}_{r}' for r in carried)}, = "
            f"{', '.join(val[s - p + r] for r in carried)},")
    if code.saved:
        out(f"    _S{L} = []")
        out(f"    _a{L} = _S{L}.append")
    out(f"    for _k{L} in range({loop.reps}):")
    for j, refs in enumerate(loop.refs):
        if refs is None:
            continue
        args = [ref_name(ir, loop, L, r, val) for r in refs]
        node = ir.order[s + j]
        tpl = ir.forward_templates[s + j]
        lines[len(src) + 1] = Line(s + j, tuple(args), p, f"_k{L}")
        out(f"        b{L}_{j} = {forward_expr(node, s + j, tpl, args, ns)}")
    if code.saved:
        out(f"        _a{L}(({', '.join(code.saved)},))")
    if carried:
        out(f"        {', '.join(f'p{L}_{r}' for r in carried)}, = "
            f"{', '.join(f'b{L}_{r}' for r in carried)},")
    outputs = set(ir.outputs)
    for j, refs in enumerate(loop.refs):
        i = e - p + j
        if refs is not None:
            val[i] = f"b{L}_{j}"
            if i in outputs:  # the backward loop rebinds the name
                out(f"    v{i} = b{L}_{j}")
                val[i] = f"v{i}"


def loop_gradients(loop: Loop, emit: Callable[[str], None], grads: Grads,
                   code: LoopCode) -> bool:
    """The backward loop, from the gradients of the last block's values to those of
    the nodes before the loop; False when those reaching the last block are not the
    ones each block passes back (the caller then writes the last block out)."""
    s, p, last, L = loop.start, loop.period, loop.end - loop.period, code.number
    name = grads.name
    fed = [j for j in range(p) if f"g{last + j}" in name]
    if fed != code.carried:
        return False
    if fed:
        emit(f"{', '.join(f'd{L}_{r}' for r in fed)}, = "
             f"{', '.join(name[f'g{last + r}'] for r in fed)},")
    for key in code.fixed:
        prev = name.get(key)
        if prev is None:
            emit(f"{key} = 0.0")
        elif prev != key:
            emit(f"{key} = {prev}")
        name[key] = key
    if code.saved:
        emit(f"for {', '.join(code.saved)}, in reversed(_S{L}):")
    else:
        emit(f"for _ in range({loop.reps}):")
    for line in code.body or ["pass"]:
        emit("    " + line)
    for r in code.carried:
        add_to(emit, grads, f"g{s - p + r}", f"d{L}_{r}", alias=True)
    return True
