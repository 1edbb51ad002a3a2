"""How gradients flow through a plan: the ops the backward pass visits, in order,
which gradients are certain, how each contribution is accumulated, and when values and
gradients die. Part of the analysis; pure functions of slot data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

from ..nodes import Constant, Node
from .ir import Acc, BackwardStep, Contribution

__all__ = ["NO_FLOW", "Flow", "backward_steps"]


class Flow(NamedTuple):
    """The backward pass as steps, and what the forward pass must keep for it."""

    steps: tuple[BackwardStep, ...]
    #: Values some backward rule reads; values whose shape alone it needs.
    kept: frozenset[int]
    tokens: frozenset[int]
    maybe_none: tuple[int, ...]
    flagged: tuple[int, ...]
    reached: tuple[bool, ...]


#: The flow of a plan without gradients.
NO_FLOW: Final = Flow((), frozenset(), frozenset(), (), (), ())


def _edges(order: Sequence[Node], inputs: Sequence[tuple[int, ...] | None], target: int,
           want: Mapping[int, tuple[bool, ...]], rules: Mapping[int, Any],
           ) -> tuple[list[int], list[tuple[int, int, int]]]:
    """The ops that receive a gradient, latest first, and the contributions they make
    in that order: (from op, input index, to slot)."""
    has: set[int] = {target}
    visit: list[int] = []
    edges: list[tuple[int, int, int]] = []
    for i in sorted(want, reverse=True):
        if i not in has:
            continue
        visit.append(i)
        vjps = None if rules[i].joint else order[i].op.vjps  # type: ignore[attr-defined]
        ins = inputs[i]
        assert ins is not None
        for k, x in enumerate(ins):
            if want[i][k] and (vjps is None or vjps[k] is not None):
                has.add(x)
                edges.append((i, k, x))
    return visit, edges


def _last_reads(visit: Sequence[int], inputs: Sequence[tuple[int, ...] | None],
                want: Mapping[int, tuple[bool, ...]], rules: Mapping[int, Any],
                kept: set[int]) -> dict[int, int]:
    """The last backward step (the reversed pass reads later ops first) reading each value."""
    last: dict[int, int] = {}
    for i in visit:
        r = rules[i]
        if r.reads_out:
            last[i] = i
        for j, x in enumerate(inputs[i] or ()):
            if r.reads_in[j] or (want[i][j] and x in kept):
                last[x] = i
    return last


def _modes(edges: Sequence[tuple[int, int, int]], sure: Mapping[tuple[int, int], bool],
           flagged: set[int], fresh: Mapping[tuple[int, int], bool],
           ) -> dict[tuple[int, int], Acc]:
    """How each contribution is added, in the order they are made. A gradient whose
    first contribution is a new array (``fresh``) is the plan's from the start."""
    done: dict[int, int] = {}
    all_sure: dict[int, bool] = {}
    owned: set[int] = set()
    modes: dict[tuple[int, int], Acc] = {}
    for i, k, s in edges:
        c = done.get(s, 0)
        done[s] = c + 1
        before = all_sure.get(s, True)
        now = sure[(i, k)]
        all_sure[s] = before and now
        if c == 0 and now:
            modes[(i, k)] = Acc.FIRST
            if fresh[(i, k)]:
                owned.add(s)
        elif s in flagged:
            modes[(i, k)] = Acc.FLAGGED
        elif c == 0 or not before:
            modes[(i, k)] = Acc.MAYBE
        else:
            modes[(i, k)] = Acc.ADD if c == 1 and s not in owned else Acc.OWNED
    return modes


def _fresh(w: Any, k: int) -> bool:
    """Whether input ``k``'s written rule answers a new array (``Written.fresh``)."""
    return w is not None and k < len(w.fresh) and w.fresh[k]


def _reads(inputs: Sequence[tuple[int, ...] | None], want: Mapping[int, tuple[bool, ...]],
           rules: Mapping[int, Any]) -> tuple[set[int], set[int]]:
    """The values some backward rule reads, and those whose shape it needs."""
    kept: set[int] = set()
    shape_of: set[int] = set()
    for i, w in want.items():
        r = rules[i]
        if r.reads_out:
            kept.add(i)
        for j, s in enumerate(inputs[i] or ()):
            if r.reads_in[j]:
                kept.add(s)
            if w[j]:
                shape_of.add(s)
    return kept, shape_of


def backward_steps(
    order: Sequence[Node], inputs: Sequence[tuple[int, ...] | None],
    outputs: Sequence[int], wrt: Sequence[int | None] | None,
    want: Mapping[int, tuple[bool, ...]], rules: Mapping[int, Any],
    looped: frozenset[int] = frozenset(), skip: set[int] | None = None,
) -> Flow:
    """The backward pass of a plan (empty without ``wrt``). Contributions of the ops in
    ``looped`` (written as loops) count as uncertain and never owned; ops in ``skip``
    get no step."""
    if wrt is None:
        return NO_FLOW
    target = outputs[0]
    kept, shape_of = _reads(inputs, want, rules)
    visit, edges = _edges(order, inputs, target, want, rules)
    certain = {target}
    sure: dict[tuple[int, int], bool] = {}
    into: dict[int, list[tuple[int, int]]] = {}
    for i, k, s in edges:
        w = rules[i].written
        ok = w is not None and w.codes[k] is not None and i in certain and i not in looped
        sure[(i, k)] = ok
        if ok:
            certain.add(s)
        into.setdefault(s, []).append((i, k))
    flagged = {s for s, cs in into.items() if len(cs) >= 3 and not all(sure[c] for c in cs)}
    fresh = {(i, k): _fresh(rules[i].written, k) and i not in looped for i, k, _ in edges}
    modes = _modes(edges, sure, flagged, fresh)
    pinned = set(outputs) | {s for s in wrt if s is not None}
    # Constants live in the namespace anyway: dropping their locals frees nothing.
    held = pinned | {i for i, n in enumerate(order) if isinstance(n, Constant)}
    last = _last_reads(visit, inputs, want, rules, kept)
    steps = []
    by_op: dict[int, list[tuple[int, int]]] = {}
    for i, k, s in edges:
        by_op.setdefault(i, []).append((k, s))
    for i in visit:
        if skip and i in skip:
            continue
        r = rules[i]
        ins = inputs[i]
        assert ins is not None
        contribs = tuple(
            Contribution(k, s, None if r.written is None else r.written.codes[k],
                         r.written is not None and r.written.pure[k], sure[(i, k)],
                         modes[(i, k)], s in kept or s in pinned, fresh[(i, k)])
            for k, s in by_op.get(i, ()))
        dead = tuple(s for s in dict.fromkeys([i, *ins]) if last.get(s) == i
                     and s not in held)
        steps.append(BackwardStep(i, ins, r.joint, want[i], i in certain, r.reads_out,
                                  r.reads_in, r.written, contribs, i not in pinned, dead))
    grads = set(into) | {s for s in wrt if s is not None}
    maybe_none = tuple(s for s in sorted(grads - {target})
                       if not into.get(s) or not sure[into[s][0]])
    reached = tuple(s is not None and (s in into or s == target) for s in wrt)
    return Flow(tuple(steps), frozenset(kept), frozenset(shape_of - kept), maybe_none,
                tuple(sorted(flagged)), reached)
