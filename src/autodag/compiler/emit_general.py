"""The general function: a plan's IR printed as straight-line Python for any values.

One line per forward op and one short block per backward rule; every value in a
numbered local, shapes checked where a gradient may need summing to its input's shape,
values dropped as soon as nothing reads them. A pure function of the IR.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ..nodes import Operator
from .consume import last_reader
from .emit_array_loop import array_loop
from .ir import Acc, BackwardStep, Contribution, ForwardStep, PlanIR
from .rolling import Loop
from .source import Block, forward_expr, rule_args, twinned, twins_of

__all__ = ["emit_general"]

#: A float is its own (free) shape token; ``_red`` reads it as shape ().
_TOKEN: Final = ("v{i}.shape if v{i}.__class__ is _nd else "
                 "v{i} if v{i}.__class__ is float else _shape_token(v{i})")


def _prologue(ir: PlanIR, ns: dict[str, Any], skip: set[int]) -> Block:
    lines: list[str] = []
    defs: set[str] = set()
    if ir.leaves:
        lines.append(f"{', '.join(f'v{i}' for i in ir.leaves)}, = L")
        defs.update(f"v{i}" for i in ir.leaves)
    # Loops read their constants from the namespace: locals only for the other code.
    read = {x for i, ins in enumerate(ir.inputs) if ins is not None and i not in skip
            for x in ins} | set(ir.outputs) | {s for s in ir.wrt or () if s is not None}
    for i in ir.constants:
        ns[f"c{i}"] = ir.order[i].value
        if i in read:
            lines.append(f"v{i} = c{i}")
            defs.add(f"v{i}")
    if ir.python_backward:
        lines.append("_fast = " + (" and ".join(
            f"v{i}.__class__ in _PYR" for i in ir.leaves) or "True"))
        defs.add("_fast")
    elif ir.grad_mode:
        lines.append("_fast = False")
        defs.add("_fast")
    for i in ir.leaf_tokens:
        lines.append(f"s{i} = {_TOKEN.format(i=i)}")
        defs.add(f"s{i}")
    return Block(tuple(lines), frozenset(defs), frozenset())


def _forward(ir: PlanIR, step: ForwardStep, ns: dict[str, Any], compact: bool) -> Block:
    i = step.slot
    node = ir.order[i]
    vals = [f"v{x}" for x in step.inputs]
    expr = forward_expr(node, i, step.template, vals, ns, twins_of(ir.order, step.inputs, ns))
    lines = [f"v{i} = {expr}"]
    let_go = () if compact else tuple(
        f"v{x}" for x in step.dead if last_reader(lines, f"v{x}"))
    defs = {f"v{i}"}
    if ir.python_backward and not (step.template is not None and step.template.pure):
        lines.append(f"if v{i}.__class__ not in _PYR: _fast = False")
        defs.add("_fast")
    if step.token:
        lines.append(f"s{i} = _shape_token(v{i})" if compact else f"s{i} = {_TOKEN.format(i=i)}")
        defs.add(f"s{i}")
    for x in step.dead:
        lines.append(f"v{x} = None")
        defs.add(f"v{x}")
    return Block(tuple(lines), frozenset(defs), frozenset(vals), node=i, args=tuple(vals),
                 let_go=let_go)


def _seed(ir: PlanIR, inner: set[int]) -> Block:
    t = ir.target
    lines = [f"g{t} = _seed(v{t}) if v{t}.__class__ is not float else 1.0"]
    # A loop keeps the gradients of its blocks but the last in its own locals.
    maybe_none = [s for s in ir.maybe_none if s not in inner]
    lines += [f"g{s} = None" for s in maybe_none]
    lines += [f"o{s} = False" for s in ir.flagged]
    defs = {f"g{t}", *(f"g{s}" for s in maybe_none), *(f"o{s}" for s in ir.flagged)}
    return Block(tuple(lines), frozenset(defs), frozenset({f"v{t}"}))


def _accumulate(c: Contribution, pad: str) -> list[str]:
    """The lines adding ``t{k}`` to ``g{target}``."""
    s, t = c.target, f"t{c.k}"
    if c.mode is Acc.FIRST:
        return [f"{pad}g{s} = {t}"]
    if c.mode is Acc.FLAGGED:
        # A new array (``fresh``) is the plan's own from the start.
        first = [f"{pad}    g{s} = {t}"] + [f"{pad}    o{s} = True"] * c.fresh
        return [f"{pad}if g{s} is None:", *first, f"{pad}elif o{s}:",
                f"{pad}    g{s} = _iadd(g{s}, {t})", f"{pad}else:",
                f"{pad}    g{s} = g{s} + {t}", f"{pad}    o{s} = True"]
    if c.mode is Acc.MAYBE:
        return [f"{pad}g{s} = {t} if g{s} is None else g{s} + {t}"]
    if c.mode is Acc.ADD:
        return [f"{pad}g{s} = g{s} + {t}"]
    # Owned: made by the '+' of the second contribution, seen by no one.
    return [f"{pad}g{s} = g{s} + {t} if g{s}.__class__ is float else _iadd(g{s}, {t})"]


#: The runtime helper that adds a contribution in one call, per accumulation mode.
_ACC: Final = {Acc.FIRST: "_accf", Acc.MAYBE: "_acca", Acc.ADD: "_acca", Acc.OWNED: "_acco"}


def _contribution(ir: PlanIR, step: BackwardStep, c: Contribution, vals: list[str],
                  twins: list[str | None], call: str, pad: str, ns: dict[str, Any],
                  compact: bool, seen: dict[tuple[str, int], int]) -> list[str]:
    i, k, s = step.slot, c.k, c.target
    if step.joint:
        expr = f"t[{k}]"
    elif c.code is not None:
        expr = twinned(c.code, c.pure, vals, twins, f"g{i}", f"v{i}")
        if c.pure and not compact:
            # x * x: both inputs' terms are g * x, for one gradient; the second is the
            # first's array (summed to the same shape). Where the first became the
            # gradient, the plan's own, adding the second in place doubles it: exact.
            if (expr, s) in seen:
                expr = f"t{seen[expr, s]}"
            else:
                seen[expr, s] = k
    else:
        ns[f"r{i}_{k}"] = ir.order[i].op.vjps[k]  # type: ignore[attr-defined]
        expr = f"r{i}_{k}{call}"
    like = f"v{s}" if c.like_value else f"s{s}"
    if compact and c.mode is not Acc.FLAGGED:
        # One call does the shape check, the sum to shape and the accumulation: a
        # fraction of the source to compile, for a few tenths of a microsecond per call.
        prev = "" if c.mode is Acc.FIRST else f"g{s}, "
        return [f"{pad}g{s} = {_ACC[c.mode]}({prev}{expr}, {like}, N{i}, {k})"]
    lines = [f"{pad}t{k} = {expr}"]
    if not c.sure:
        lines.append(f"{pad}if t{k} is not None:")
        pad += "    "
    # Nothing to sum for two floats or an array already of the right shape.
    same = (f"t{k}.__class__ is _nd is {like}.__class__ and t{k}.shape == {like}.shape"
            if c.like_value else f"t{k}.__class__ is _nd and t{k}.shape == {like}")
    lines.append(f"{pad}if not ({same}) "
                 f"and (t{k}.__class__ is not float or {like}.__class__ is not float):")
    lines.append(f"{pad}    t{k} = _red(t{k}, {like}, N{i}, {k})")
    return lines + _accumulate(c, pad)


def _let_go(lines: list[str], step: BackwardStep, pad: str) -> tuple[str, ...]:
    """Hand the gradient and values dying at this step, and the step's terms, to their
    last readers (``consume``); no term outlives its step holding a gradient's array.
    The gradient and values handed over."""
    dying = [f"v{s}" for s in step.dead] + [f"g{step.slot}"] * step.free_grad
    handed = tuple(name for name in dying if last_reader(lines, name))
    terms = [f"t{c.k}" for c in step.contributions if not step.joint]
    if terms:
        for t in terms:
            last_reader(lines, t)
        lines.append(f"{pad}{' = '.join(terms)} = None")
    return handed


def _backward(ir: PlanIR, step: BackwardStep, ns: dict[str, Any], compact: bool) -> Block:
    i, ins = step.slot, step.inputs
    node = ir.order[i]
    assert isinstance(node, Operator)
    ns[f"N{i}"] = node
    pad = "" if step.certain else "    "
    lines = [] if step.certain else [f"if g{i} is not None:"]
    vals = [f"v{s}" for s in ins]
    call = rule_args(node, i, f"g{i}", f"v{i}", vals, step, ns)
    twins = twins_of(ir.order, ins, ns)
    shared = step.written.shared if step.written is not None else None
    if shared is not None:
        pure = step.written is not None and step.written.all_pure
        lines.append(f"{pad}_q = {twinned(shared, pure, vals, twins, f'g{i}', f'v{i}')}")
    if step.joint:
        ns[f"b{i}"] = node.op.joint_backward
        lines.append(f"{pad}t = _joint(b{i}{call}, N{i})")
    seen: dict[tuple[str, int], int] = {}
    for c in step.contributions:
        lines += _contribution(ir, step, c, vals, twins, call, pad, ns, compact, seen)
    if step.joint:
        lines.append(f"{pad}t = None")
    if shared is not None:
        lines.append(f"{pad}_q = None")
    let_go = () if compact else _let_go(lines, step, pad)
    if step.free_grad:
        lines.append(f"g{i} = None")
    lines += [f"v{s} = None" for s in step.dead]
    targets = {c.target for c in step.contributions}
    flags = {f"o{c.target}" for c in step.contributions if c.mode is Acc.FLAGGED}
    # Exactly the names the block binds: a chunk stores what it lists.
    defs = {*(f"g{s}" for s in targets), *flags, *(f"v{s}" for s in step.dead)}
    if step.free_grad:
        defs.add(f"g{i}")
    uses = {f"g{i}", f"v{i}", *vals, *(f"s{s}" for s in ins), *(f"g{s}" for s in targets),
            *flags}
    return Block(tuple(lines), frozenset(defs), frozenset(uses), node=i, args=tuple(vals),
                 backward=True, let_go=let_go)


def _result(ir: PlanIR) -> Block:
    outs = [f"v{s}" for s in ir.outputs]
    grads = [f"g{s}" if r else "None" for s, r in zip(ir.wrt or (), ir.reached, strict=True)]
    g = ", ".join(grads) + ("," if grads else "")
    return Block((f"_R = ({', '.join(outs)},), ({g})",), frozenset({"_R"}),
                 frozenset(outs) | {x for x in grads if x != "None"})


def emit_general(ir: PlanIR, compact: bool = False, loops: Sequence[Loop] = (),
                 ) -> tuple[list[Block], list[Block], dict[str, Any]] | None:
    """The forward blocks, the backward blocks (none without ``wrt``) and the names
    the code reads from its namespace; None when one of ``loops`` cannot be written as
    a loop. ``compact`` code (for large plans, where compiling dominates) leaves shape
    checks and accumulation to runtime helpers."""
    ns: dict[str, Any] = {}
    for w in ir.written.values():
        ns.update(w.names)
    steps = {st.slot: st for st in ir.backward}
    targeted = {c.target for st in ir.backward for c in st.contributions} | set(ir.maybe_none)
    if ir.grad_mode:
        targeted.add(ir.target)
    written = []
    for L, loop in enumerate(loops):
        got = array_loop(ir, loop, L, steps, targeted, ns)
        if got is None:
            return None
        written.append((loop, got))
    skip = {i for loop in loops for i in range(loop.start, loop.end)}
    fw = [_prologue(ir, ns, skip)]
    # Each loop's forward block stands where its first op would.
    at = {next(i for i in range(lp.start, lp.end) if ir.inputs[i] is not None): got
          for lp, got in written}
    for st in ir.forward:
        if st.slot in at:
            fw.append(at[st.slot].forward)
        elif st.slot not in skip:
            fw.append(_forward(ir, st, ns, compact))
    if not ir.grad_mode:
        outs = [f"v{s}" for s in ir.outputs]
        fw.append(Block((f"_R = ({', '.join(outs)},), ()",), frozenset({"_R"}),
                        frozenset(outs)))
        return fw, [], ns
    inner = {i for lp in loops for i in range(lp.start, lp.end - lp.period)}
    bw = [_seed(ir, inner)]
    pending = sorted(written, key=lambda lg: -lg[0].start)
    for bst in ir.backward:
        while pending and bst.slot < pending[0][0].start:
            b = pending.pop(0)[1].backward
            assert b is not None
            bw.append(b)
        if bst.slot not in skip:
            bw.append(_backward(ir, bst, ns, compact))
    for _, got in pending:
        assert got.backward is not None
        bw.append(got.backward)
    bw.append(_result(ir))
    return fw, bw, ns
