"""A repeated block of the general function written as a loop, for any values.

The forward loop saves, per repetition, what the block's backward rules read (values
and shape tokens); the backward loop runs the block's rules over the saved tuples in
reverse. Gradients here may be missing or of any shape, so every contribution goes
through the runtime's ``_acca`` (sum to shape, add where present): the same code serves
every repetition. Loop ``L``'s locals: ``b{L}_3`` / ``p{L}_3`` the block's value at
position 3 and the one carried in; ``d{L}_3`` / ``n{L}_3`` their gradients;
``sb{L}_3`` / ``sp{L}_3`` their shapes; ``q{L}_2_3`` the value two blocks back.
"""

from __future__ import annotations

from typing import Any

from ..nodes import Constant, Operator
from .ir import BackwardStep, PlanIR
from .rolling import Loop, Ref
from .source import Block, Line, fields_of, forward_expr, rule_args

__all__ = ["ArrayLoop", "array_loop"]


class ArrayLoop:
    """The forward and backward blocks of one loop."""

    def __init__(self, forward: Block, backward: Block | None) -> None:
        self.forward, self.backward = forward, backward


def _outer(ir: PlanIR, x: int) -> str:
    """The name of a node outside the loop: a local, or a constant's namespace name."""
    return f"c{x}" if isinstance(ir.order[x], Constant) else f"v{x}"


def _name(ir: PlanIR, loop: Loop, L: int, ref: Ref) -> str:
    kind, x = ref
    if kind == "local":
        s = loop.start + x
        return f"c{s}" if isinstance(ir.order[s], Constant) else f"b{L}_{x}"
    if kind == "carry":
        return f"p{L}_{x}"
    if kind == "lag":
        d, r = divmod(x, loop.period)
        return f"q{L}_{d}_{r}"
    return _outer(ir, x)


def _key(loop: Loop, L: int, ref: Ref) -> str:
    """The gradient a contribution to ``ref`` goes to."""
    kind, x = ref
    if kind == "lag":
        d, r = divmod(x, loop.period)
        return f"m{L}_{d}_{r}"
    return {"local": f"d{L}_", "carry": f"n{L}_", "fixed": "g"}[kind] + str(x)


def _like(ir: PlanIR, loop: Loop, L: int, ref: Ref, value: bool,
          saved: dict[str, str]) -> str:
    """What a contribution to ``ref``'s gradient is summed to: its value or shape."""
    kind, x = ref
    if kind == "fixed":
        return f"v{x}" if value else f"s{x}"
    name = _name(ir, loop, L, ref)
    token = "s" + name
    if name in saved:
        return name
    saved[token] = f"_shape_token({name})"
    return token


def _rules(ir: PlanIR, loop: Loop, L: int, j: int, step: BackwardStep, ns: dict[str, Any],
           saved: dict[str, str], out: list[str], marks: list[tuple[int, Line]]) -> None:
    """The backward lines of block position ``j`` (at most one iteration's worth)."""
    i, refs = loop.start + j, loop.refs[j]
    assert refs is not None
    node = ir.order[i]
    assert isinstance(node, Operator)
    g, b = f"d{L}_{j}", f"b{L}_{j}"
    vals = [_name(ir, loop, L, r) for r in refs]
    read = {n for n, used in zip(vals, step.reads_in, strict=True) if used}
    if step.reads_out:
        read.add(b)
    w = step.written
    for code in [*(w.codes if w else ()), w.shared if w else None]:
        for f in fields_of(code) if code else ():
            read.add(b if f == "out" else vals[int(f)] if f.isdigit() else g)
    for n in read:
        if n.startswith((f"b{L}_", f"p{L}_", f"q{L}_")):
            saved[n] = n
    call = rule_args(node, i, g, b, vals, step, ns)
    where = f"_N{L}_{j}[_k{L}]"
    ns[f"_N{L}_{j}"] = [ir.order[i + k * loop.period] for k in range(loop.reps)]
    first = len(out)
    out.append(f"        if {g} is not None:")
    if w is not None and w.shared is not None:
        out.append(f"            _q = {w.shared.format(*vals, g=g, out=b)}")
    if step.joint:
        ns[f"b{i}"] = node.op.joint_backward
        out.append(f"            t = _joint(b{i}{call}, {where})")
    for c in step.contributions:
        key = _key(loop, L, refs[c.k])
        if step.joint:
            expr = f"t[{c.k}]"
        elif c.code is not None:
            expr = c.code.format(*vals, g=g, out=b)
        else:
            ns[f"r{i}_{c.k}"] = node.op.vjps[c.k]  # type: ignore[index]
            expr = f"r{i}_{c.k}{call}"
        like = _like(ir, loop, L, refs[c.k], c.like_value, saved)
        out.append(f"            {key} = _acca({key}, {expr}, {like}, {where}, {c.k})")
    line = Line(i, tuple(vals), loop.period, f"_k{L}", backward=True, grad=g)
    marks += [(n, line) for n in range(first, len(out))]


def _backward(ir: PlanIR, loop: Loop, L: int, steps: dict[int, BackwardStep],
              targeted: set[int], ns: dict[str, Any], saved: dict[str, str]) -> Block | None:
    s, p, e = loop.start, loop.period, loop.end
    body: list[str] = []
    marks: list[tuple[int, Line]] = []
    for j in reversed(range(p)):
        i = s + j
        if loop.refs[j] is None or i not in ir.want:
            continue
        step = steps.get(i)
        if step is None:
            return None  # the first block is not like the others
        _rules(ir, loop, L, j, step, ns, saved, body, marks)
    ops = [j for j, r in enumerate(loop.refs) if r is not None]
    window = loop.window
    # Per position read by later blocks: d{L}_r the gradient of this block's value,
    # a{L}_e_r what later blocks gave so far to the block e back.
    state = [f"d{L}_{r}" for r in window] + [f"a{L}_{k}_{r}" for r, dr in window.items()
                                              for k in range(1, dr)]
    entry = [f"g{e - p + r}" if e - p + r in targeted else "None" for r in window]
    entry += ["None"] * (len(state) - len(window))
    head = [f"{', '.join(state)}, = {', '.join(entry)},"] if state else []
    head.append(f"for _k{L} in range({loop.reps - 1}, -1, -1):")
    names = sorted(saved)
    if names:
        head.append(f"    {', '.join(names)}, = _S{L}[_k{L}]")
    resets = [f"n{L}_{r}" for r in window]
    resets += [f"m{L}_{d}_{r}" for r, dr in window.items() for d in range(2, dr + 1)]
    resets += [f"d{L}_{j}" for j in ops if j not in window]
    if resets:
        head.append(f"    {' = '.join(resets)} = None")
    # Into the block before: its own gradient is complete, the others move up one.
    moved = [f"_accn(a{L}_1_{r}, n{L}_{r})" if dr > 1 else f"n{L}_{r}"
             for r, dr in window.items()]
    moved += [f"_accn(a{L}_{k + 1}_{r}, m{L}_{k + 1}_{r})" if k + 1 < dr else f"m{L}_{dr}_{r}"
              for r, dr in window.items() for k in range(1, dr)]
    tail = [f"    {', '.join(state)}, = {', '.join(moved)},"] if state else []
    defs: set[str] = set()
    for r, dr in window.items():
        for back in range(dr):
            x = s - (back + 1) * p + r
            if x in targeted:
                held = f"d{L}_{r}" if back == 0 else f"a{L}_{back}_{r}"
                tail.append(f"g{x} = _accn(g{x}, {held})")
                defs.add(f"g{x}")
    fixed = {x for refs in loop.refs if refs for kind, x in refs if kind == "fixed"}
    defs |= {f"g{x}" for x in fixed if x in targeted}
    uses = {f"_S{L}", *defs, *(f"g{e - p + r}" for r in window),
            *(f"v{x}" for x in fixed), *(f"s{x}" for x in fixed)}
    lines = head + [ln[4:] for ln in body] + tail
    shift = len(head)
    return Block(tuple(lines), frozenset(defs), frozenset(uses),
                 marks=tuple((n + shift, m) for n, m in marks))


def _forward(ir: PlanIR, loop: Loop, L: int, saved: dict[str, str],
             ns: dict[str, Any]) -> Block:
    s, p, e = loop.start, loop.period, loop.end
    window = loop.window
    lines: list[str] = []
    marks: list[tuple[int, Line]] = []
    uses: set[str] = set()
    # The values later blocks read: p{L}_r one block back, q{L}_d_r d blocks back.
    held = [f"p{L}_{r}" for r in window] + [f"q{L}_{d}_{r}" for r, dr in window.items()
                                            for d in range(2, dr + 1)]
    if held:
        init = [_outer(ir, s - p + r) for r in window]
        init += [_outer(ir, s - d * p + r) for r, dr in window.items() for d in range(2, dr + 1)]
        uses.update(init)
        lines.append(f"{', '.join(held)}, = {', '.join(init)},")
    if saved:
        lines += [f"_S{L} = []", f"_a{L} = _S{L}.append"]
    lines.append(f"for _k{L} in range({loop.reps}):")
    defs = {f"_S{L}"} if saved else set()
    for j, refs in enumerate(loop.refs):
        if refs is None:
            continue
        i = s + j
        args = [_name(ir, loop, L, r) for r in refs]
        uses.update(a for a in args if a.startswith("v"))
        tpl = ir.forward_templates[i]
        marks.append((len(lines), Line(i, tuple(args), p, f"_k{L}")))
        lines.append(f"    b{L}_{j} = {forward_expr(ir.order[i], i, tpl, args, ns)}")
        if ir.python_backward and not (tpl is not None and tpl.pure):
            lines.append(f"    if b{L}_{j}.__class__ not in _PYR: _fast = False")
            defs.add("_fast")
            uses.add("_fast")
    if saved:
        names = sorted(saved)
        lines.append(f"    _a{L}(({', '.join(saved[n] for n in names)},))")
    if held:
        shifted = [f"b{L}_{r}" for r in window] + [
            f"p{L}_{r}" if d == 2 else f"q{L}_{d - 1}_{r}"
            for r, dr in window.items() for d in range(2, dr + 1)]
        lines.append(f"    {', '.join(held)}, = {', '.join(shifted)},")
    tokens = {st.slot for st in ir.forward if st.token}
    for j, refs in enumerate(loop.refs):
        if refs is not None:
            x = e - p + j
            lines.append(f"v{x} = b{L}_{j}")
            defs.add(f"v{x}")
            if x in tokens:
                lines.append(f"s{x} = _shape_token(v{x})")
                defs.add(f"s{x}")
    return Block(tuple(lines), frozenset(defs), frozenset(uses), marks=tuple(marks))


def array_loop(ir: PlanIR, loop: Loop, L: int, steps: dict[int, BackwardStep],
               targeted: set[int], ns: dict[str, Any]) -> ArrayLoop | None:
    """Loop ``L``'s forward block and backward block (None without gradients), or
    None when the loop cannot be written so."""
    saved: dict[str, str] = {}
    backward = None
    if ir.grad_mode:
        backward = _backward(ir, loop, L, steps, targeted, ns, saved)
        if backward is None:
            return None
    return ArrayLoop(_forward(ir, loop, L, saved, ns), backward)
