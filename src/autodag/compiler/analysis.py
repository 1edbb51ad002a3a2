"""Analysis: a topological order, outputs and wrt nodes turned into a ``PlanIR``.

Decides which ops the backward pass visits and which inputs each feeds, what every rule
reads (from its template, or from its bytecode), when each value and gradient dies, and
how each gradient contribution is accumulated. Unit-testable without running anything.
"""

from __future__ import annotations

import dis
import functools
import inspect
import types
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

from ..nodes import Constant, Node, Operator
from ..opdef import OpDef
from ..registry import Registry
from .gradflow import NO_FLOW, Flow, backward_steps
from .ir import ForwardStep, PlanIR
from .rolling import Loop
from .templates import Tpl, Written, derived, op_templates, written

__all__ = ["build_ir", "param_use", "templated"]

_PY_REAL: Final = (int, float)


@functools.lru_cache(maxsize=4096)
def param_use(fn: Callable[..., Any], n_inputs: int) -> tuple[bool, tuple[bool, ...]]:
    """Whether a rule ``fn(xp, g, out, *inputs)`` reads ``out`` and each input.

    Read from the bytecode (once per rule): a parameter never loaded cannot be read, so
    the plan may drop that value before the backward pass. Anything unusual counts as
    reading all.
    """
    every = (True, (True,) * n_inputs)
    if not isinstance(fn, types.FunctionType):
        return every
    code = fn.__code__
    if {"locals", "vars", "sys", "inspect"} & set(code.co_names):
        return every
    nargs = code.co_argcount
    names = code.co_varnames[:nargs]
    loaded: set[str] = set(code.co_cellvars)
    for ins in dis.get_instructions(code):
        if ins.opname.startswith(("LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE", "DELETE_FAST")):
            val = ins.argval
            if isinstance(val, tuple):
                loaded.update(v for v in val if isinstance(v, str))
            elif isinstance(val, str):
                loaded.add(val)
    star: str | None = None
    if code.co_flags & inspect.CO_VARARGS:
        star = code.co_varnames[nargs + code.co_kwonlyargcount]
    star_used = star is not None and star in loaded

    def used(pos: int) -> bool:
        if pos < nargs:
            return names[pos] in loaded
        return star_used if star is not None else True

    return used(2), tuple(used(3 + k) for k in range(n_inputs))


class _Rules(NamedTuple):
    """What one active op's backward rules read, and how they are written."""

    joint: bool
    reads_out: bool
    reads_in: tuple[bool, ...]
    written: Written | None


def _active(order: Sequence[Node], inputs: Sequence[tuple[int, ...] | None],
            target: int, wrt: Sequence[int]) -> dict[int, tuple[bool, ...]]:
    """The ops the backward pass visits (the output depends on them, and they on a wrt
    node, and they are differentiable), and which of their inputs want a gradient."""
    n = len(order)
    needed = [False] * n
    for s in wrt:
        needed[s] = True
    for i, ins in enumerate(inputs):
        if ins is not None and not needed[i]:
            for x in ins:
                if needed[x]:
                    needed[i] = True
                    break
    reach = [False] * n
    reach[target] = True
    for i in range(n - 1, -1, -1):
        ins = inputs[i]
        if reach[i] and ins is not None:
            for x in ins:
                reach[x] = True
    differentiable: dict[Any, bool] = {}
    want: dict[int, tuple[bool, ...]] = {}
    for i, ins in enumerate(inputs):
        if ins is None or not reach[i]:
            continue
        op = order[i].op  # type: ignore[attr-defined]
        d = differentiable.get(op)
        if d is None:
            d = differentiable[op] = op.differentiable
        if not d:
            continue
        w = tuple([needed[x] for x in ins])
        if True in w:
            want[i] = w
    return want


def _rules(op: OpDef, n_in: int, want: tuple[bool, ...], registry: Registry) -> _Rules:
    """What ``op``'s rules read for the inputs that want gradients (once per op, input
    count and wanted inputs per registry snapshot)."""
    cache = derived(registry, "rules")
    key = (op, n_in, want)
    got: _Rules | None = cache.get(key)
    if got is None:
        got = cache[key] = _read_rules(op, n_in, want, registry)
    return got


def _read_rules(op: OpDef, n_in: int, want: tuple[bool, ...], registry: Registry) -> _Rules:
    vjps = op.vjps
    if vjps is None:
        assert op.joint_backward is not None
        o, r = param_use(op.joint_backward, n_in)
        return _Rules(True, o, r, None)
    tpls = op_templates(op, registry)
    reads_out, reads_in = False, [False] * n_in
    for k, rule in enumerate(vjps):
        if rule is None or not want[k]:
            continue
        tpl = tpls.vjp(k)
        if tpl is not None:
            reads_out |= "out" in tpl.fields
            for j in range(n_in):
                reads_in[j] |= str(j) in tpl.fields
        else:
            o, r = param_use(rule, n_in)
            reads_out |= o
            reads_in = [a or b for a, b in zip(reads_in, r, strict=True)]
    return _Rules(False, reads_out, tuple(reads_in), written(op, want, registry))


def templated(order: Sequence[Node]) -> bool:
    """Whether every op declares templates and every constant is a Python number: a
    graph meant to run on Python numbers."""
    for node in order:
        if isinstance(node, Constant):
            if type(node.value) not in _PY_REAL:
                return False
        elif (isinstance(node, Operator) and node.op.inline is None
              and node.op.inline_vjps is None):
            return False
    return True


def _forward_steps(order: Sequence[Node], inputs: Sequence[tuple[int, ...] | None],
                   templates: dict[int, Tpl | None], drop: set[int], bw: Flow,
                   ) -> tuple[ForwardStep, ...]:
    """The forward pass: each op, and the values nothing reads after it."""
    last_fw: dict[int, int] = {}
    for i, ins in enumerate(inputs):
        for x in ins or ():
            last_fw[x] = i
    forward = []
    for i, ins in enumerate(inputs):
        if ins is None:
            continue
        dead = tuple(x for x in dict.fromkeys(ins) if last_fw.get(x) == i
                     and x not in bw.kept and x not in drop)
        forward.append(ForwardStep(i, ins, templates[i], i in bw.tokens, dead))
    return tuple(forward)


def _forward_templates(order: Sequence[Node], registry: Registry) -> dict[int, Tpl | None]:
    """Per op slot: the forward template written out (None: the rule is called)."""
    forwards: dict[Any, Tpl | None] = {}
    templates: dict[int, Tpl | None] = {}
    for i, node in enumerate(order):
        if isinstance(node, Operator):
            op = node.op
            if op not in forwards:
                forwards[op] = op_templates(op, registry).forward
            templates[i] = None if node.attrs else forwards[op]
    return templates


def build_ir(order: Sequence[Node], outputs: Sequence[Node], wrt: Sequence[Node] | None,
             registry: Registry, general: bool = True,
             loops: Sequence[Loop] = ()) -> PlanIR:
    """The plan's IR: forward steps, backward steps and what the emitters decide on.
    Without ``general``, only what the scalar function needs (no steps). For ``loops``
    (written as loops), steps only of each one's first and last block."""
    order = tuple(order)
    slot = {n: i for i, n in enumerate(order)}
    inputs = tuple([tuple([slot[x] for x in node.inputs]) if node.__class__ is Operator
                    or isinstance(node, Operator) else None for node in order])
    out_slots = tuple(slot[o] for o in outputs)
    wrt_slots = None if wrt is None else tuple(slot.get(w) for w in wrt)
    is_templated = templated(order)
    want: dict[int, tuple[bool, ...]] = {}
    rules: dict[int, _Rules] = {}
    if wrt_slots is not None:
        want = _active(order, inputs, out_slots[0], [s for s in wrt_slots if s is not None])
        seen: dict[Any, _Rules] = {}  # the registry's cache, without its lookups per node
        for i, w in want.items():
            op = order[i].op  # type: ignore[attr-defined]
            key = (op, w)
            r = seen.get(key)
            if r is None:
                r = seen[key] = _rules(op, len(w), w, registry)
            rules[i] = r
    templates = _forward_templates(order, registry)
    constants = tuple(i for i, n in enumerate(order) if isinstance(n, Constant))
    is_const = set(constants)
    bw = NO_FLOW
    forward: tuple[ForwardStep, ...] = ()
    if general:
        looped = frozenset(i for lp in loops for i in range(lp.start, lp.end))
        inner = {i for lp in loops for i in range(lp.start + lp.period, lp.end - lp.period)}
        bw = backward_steps(order, inputs, out_slots, wrt_slots, want, rules, looped, inner)
        # Constants live in the namespace anyway: dropping their locals frees nothing.
        pinned = set(out_slots) | {s for s in wrt_slots or () if s is not None}
        forward = tuple(st for st in _forward_steps(order, inputs, templates,
                                                    pinned | is_const, bw)
                        if st.slot not in inner)
    # Rules are shared per op and wanted inputs: each distinct one is looked at once.
    distinct = {id(r): r for r in rules.values()}.values()
    complete = all(not r.joint and r.written is not None and r.written.complete
                   for r in distinct)
    python_backward = wrt_slots is not None and is_templated and all(
        not r.joint and r.written is not None and r.written.all_pure for r in distinct)
    return PlanIR(
        order, inputs,
        tuple(i for i, x in enumerate(inputs) if x is None and i not in is_const),
        constants, out_slots, wrt_slots, forward,
        tuple(i for i in sorted(bw.tokens) if inputs[i] is None), bw.steps,
        bw.maybe_none, bw.flagged, bw.reached, is_templated, python_backward,
        is_templated and complete, not complete,
        want, {i: r.written for i, r in rules.items() if r.written is not None}, templates,
    )
