"""Repeated blocks in a topological order: what lets a plan write a loop, not lines.

A graph built by a Python loop (an unrolled recurrence, an iterative solver, a long
chain) repeats one block of ops many times. Written out line by line, the generated
function costs CPython about 10 us per line to compile, which is most of the time a
large graph takes to compile; written as a loop over one block, it compiles in a
constant time and runs at nearly the same speed.

A block repeats when each of its nodes, one period later, is the same op with the same
attributes whose inputs relate the same way: the node one period later (a value of this
block or carried from the previous one), the very same node (a value computed before
the loop), or an equal Python-number constant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, NamedTuple

import numpy as np

from ..nodes import Constant, Node, Operator
from . import limits

__all__ = ["Codes", "Loop", "Ref", "codes", "find_loop", "find_loops", "limit", "uniform"]

#: How an input of a block's op is found in every repetition: ``("local", j)`` the
#: value at position ``j`` of the same block; ``("carry", j)`` the value at position
#: ``j`` of the previous block (for the first block, the node one period before);
#: ``("lag", d * period + j)`` the value at position ``j`` of the block ``d`` >= 2
#: blocks before (for the first blocks, the node ``d`` periods before);
#: ``("fixed", slot)`` the same node in every block (or equal constants).
Ref = tuple[Literal["local", "carry", "lag", "fixed"], int]

#: How many blocks back a loop's block may read.
MAX_LAG: Final = 4

#: How far back the search looks for the previous occurrence of an op, and how many
#: occurrences it tries.
_MAX_PERIOD: Final = 4096
_TRIES: Final = 8

_SHIFT, _SAME, _CONST = 0, 1, 2


class Loop(NamedTuple):
    """``reps`` blocks of ``period`` nodes from slot ``start``; ``refs[j]`` tells where
    the op at block position ``j`` finds its inputs (None for a constant)."""

    start: int
    period: int
    reps: int
    refs: tuple[tuple[Ref, ...] | None, ...]

    @property
    def end(self) -> int:
        """The slot after the last block."""
        return self.start + self.period * self.reps

    @property
    def carried(self) -> list[int]:
        """Block positions whose values the next block reads, in order."""
        return sorted({x for refs in self.refs if refs for kind, x in refs
                       if kind == "carry"})

    @property
    def window(self) -> dict[int, int]:
        """Block positions whose values later blocks read: how many blocks back, at most."""
        depth: dict[int, int] = {}
        for refs in self.refs:
            for kind, x in refs or ():
                if kind in ("carry", "lag"):
                    d, r = divmod(x, self.period) if kind == "lag" else (1, x)
                    depth[r] = max(depth.get(r, 0), d)
        return dict(sorted(depth.items()))

    @property
    def lags(self) -> bool:
        """Whether a block reads further back than the previous one."""
        return any(kind == "lag" for refs in self.refs if refs for kind, _ in refs)


def _constant_key(value: object, i: int) -> object:
    """Equal for constants a loop may read as one: Python numbers of one type and value
    (and sign: -0.0 is not 0.0 to a division); every other constant its own."""
    if value.__class__ is int:
        return (int, value)
    if value.__class__ is float and value == value:
        return (float, value, math.copysign(1.0, value))
    return ("node", i)


def _op_key(node: Operator, i: int) -> object:
    """Equal for ops that compute alike: the same op, input count and attributes."""
    if not node.attrs:
        return (node.op, len(node.inputs))
    try:
        key = (node.op, len(node.inputs), tuple(sorted(node.attrs.items())))
        hash(key)
    except TypeError:  # arrays among the attributes: do not compare
        return ("node", i)
    return key


class Codes(NamedTuple):
    """The graph as arrays: per node a code equal for nodes that may repeat each other,
    whether it is a constant, and its input slots (-1 where it has fewer)."""

    code: np.ndarray[Any, np.dtype[np.int64]]
    const: np.ndarray[Any, np.dtype[np.bool_]]
    inputs: np.ndarray[Any, np.dtype[np.int64]]


def codes(order: Sequence[Node], inputs: Sequence[Sequence[int] | None]) -> Codes:
    """``Codes`` of a topological order, given each op's input slots."""
    ids: dict[object, int] = {}
    code: list[int] = []
    const: list[bool] = []
    width = max((len(x) for x in inputs if x is not None), default=0) or 1
    rows: list[Sequence[int]] = []
    pad = [-1] * width
    for i, node in enumerate(order):
        ins = inputs[i]
        cls = node.__class__
        if cls is Operator:
            key = _op_key(node, i)  # type: ignore[arg-type]
        elif cls is Constant:
            key = _constant_key(node._value, i)
        else:  # a leaf, or a node of a subclass: never repeats another
            key = ("node", i)
        code.append(ids.setdefault(key, len(ids)))
        const.append(cls is Constant)
        if ins is None:
            rows.append(pad)
        elif len(ins) == width:
            rows.append(ins)
        else:
            rows.append([*ins, *pad[len(ins):]])
    return Codes(np.array(code, np.int64), np.array(const, bool),
                 np.array(rows, np.int64).reshape(len(order), width))


def _run(c: Codes, i0: int, period: int) -> tuple[int, int, dict[int, tuple[int, ...]]] | None:
    """The longest stretch ``[lo, hi)`` around ``i0`` of nodes repeated one period
    later, each position of the block related the same way every time; and that way,
    per position: for each input, shifted by the period, the same node or an equal
    constant."""
    n = len(c.code)
    p = period
    same_kind = c.code[:-p] == c.code[p:]
    xa, xb = c.inputs[:-p], c.inputs[p:]
    cin = c.const[xa] & (xa >= 0)
    same = xa == xb
    shift = (xb - xa) == p
    equal_const = c.code[xa] == c.code[xb]
    ok = same_kind & np.where(cin, equal_const, same | shift).all(axis=1)
    rel = np.where(cin, _CONST, np.where(same, _SAME, _SHIFT))
    # Each position relates the same way every time: pairs one period apart agree.
    agree = np.ones(n - p, bool)
    agree[:-p] = (rel[:-p] == rel[p:]).all(axis=1) | ~ok[p:]
    ok &= agree
    if not ok[i0]:
        return None
    bad = np.flatnonzero(~ok)
    k = int(np.searchsorted(bad, i0))
    lo = int(bad[k - 1]) + 1 if k > 0 else 0
    hi = int(bad[k]) if k < len(bad) else n - p
    pattern = {i % p: tuple(int(r) for r in rel[i][c.inputs[i] >= 0])
               for i in range(lo, min(lo + p, hi))}
    return lo, hi, pattern


def _block_refs(
    order: Sequence[Node], slot: Mapping[Node, int], start: int, period: int,
    pattern: Mapping[int, tuple[int, ...]], max_lag: int,
) -> tuple[int, list[tuple[Ref, ...] | None]] | None:
    """Where each op of the block at ``start`` finds its inputs, and the first slot the
    loop may start at (after every node all blocks share)."""
    refs: list[tuple[Ref, ...] | None] = []
    first = start
    for j in range(period):
        node = order[start + j]
        if isinstance(node, Constant):
            refs.append(None)
            continue
        if not isinstance(node, Operator):
            return None
        rel = pattern[(start + j) % period]
        r: list[Ref] = []
        for x, kind in zip(node.inputs, rel, strict=True):
            sx = slot[x]
            if kind == _CONST:
                r.append(("fixed", sx))
            elif kind == _SAME:
                first = max(first, sx + 1)
                r.append(("fixed", sx))
            elif sx >= start:
                r.append(("local", sx - start))
            else:
                d = -(-(start - sx) // period)  # how many blocks back
                if d > max_lag or not isinstance(order[sx + d * period], Operator):
                    return None
                pos = sx - start + d * period
                r.append(("carry", pos) if d == 1 else ("lag", d * period + pos))
        refs.append(tuple(r))
    return first, refs


def _loop_at(order: Sequence[Node], slot: Mapping[Node, int], lo: int, hi: int,
             period: int, pattern: Mapping[int, tuple[int, ...]], max_lag: int) -> Loop | None:
    """The loop over the blocks of the stretch ``[lo, hi + period)``."""
    start, reps = lo, (hi + period - lo) // period
    if reps < limits.MIN_REPS:
        return None
    for _ in range(2):
        got = _block_refs(order, slot, start, period, pattern, max_lag)
        if got is None:
            return None
        first, refs = got
        if first <= start:
            return Loop(start, period, reps, tuple(refs)) if reps >= limits.MIN_REPS else None
        # A node every block reads lies in the stretch: start the loop after it.
        skip = -(-(first - start) // period)
        start, reps = start + skip * period, reps - skip
        if reps < limits.MIN_REPS:
            return None
    return None


def find_loop(order: Sequence[Node], slot: Mapping[Node, int], c: Codes,
              min_nodes: int, first: int = 0, max_lag: int = 1) -> Loop | None:
    """The longest run of a repeated block covering at least ``min_nodes`` nodes, or
    None. Looks around a few anchor nodes, at the previous occurrences of their op."""
    n = len(order)
    if n - first < min_nodes:
        return None
    best: Loop | None = None
    w = n - first
    for anchor in (first + w // 2, first + w // 3, first + 2 * w // 3, first + w // 6,
                   first + 5 * w // 6):
        if (best is not None and best.start <= anchor < best.end) or \
                order[anchor].__class__ is not Operator:
            continue
        lo = max(anchor - _MAX_PERIOD, 0)
        earlier = np.flatnonzero(c.code[lo:anchor] == c.code[anchor])[::-1][:_TRIES] + lo
        found: list[int] = []
        for j in earlier.tolist():
            period = anchor - j
            if period * limits.MIN_REPS > n:
                break
            if any(period % f == 0 for f in found):
                continue  # repeats as fewer, larger blocks of a period already found
            got = _run(c, j, period)
            if got is not None:
                loop = _loop_at(order, slot, got[0], got[1], period, got[2], max_lag)
                if loop is not None:
                    found.append(period)
                    if best is None or loop.period * loop.reps > best.period * best.reps:
                        best = loop
    if best is None or best.period * best.reps < min_nodes:
        return None
    return best


def uniform(loop: Loop, signature: np.ndarray[Any, np.dtype[np.int64]]) -> Loop | None:
    """The longest stretch of ``loop``'s blocks around its middle whose nodes all have
    the same ``signature`` as one period later (what the backward pass does with each:
    a block whose gradients flow differently cannot share the loop)."""
    p, s, reps = loop.period, loop.start, loop.reps
    blocks = signature[s:s + reps * p].reshape(reps, p)
    same = (blocks[:-1] == blocks[1:]).all(axis=1)  # block k like block k + 1
    mid = reps // 2
    differ = np.flatnonzero(~same)
    k = int(np.searchsorted(differ, mid))
    lo = int(differ[k - 1]) + 1 if k > 0 else 0
    hi = int(differ[k]) if k < len(differ) else reps - 1
    if hi - lo + 1 < limits.MIN_REPS:
        return None
    # References are relative (and fixed nodes precede the first block), so they hold
    # from any later first block: its carried inputs come from the block before it.
    return Loop(s + lo * p, p, hi - lo + 1, loop.refs)


def limit(loop: Loop, order: Sequence[Node], slot: Mapping[Node, int],
          outputs: Sequence[int], wrt: Sequence[int]) -> Loop | None:
    """``loop`` cut short so that nothing after it reads a block but the last, every
    output but in the last block, and every ``wrt`` node after it; a loop whose first
    block holds a ``wrt`` node starts after it instead."""
    s, p = loop.start, loop.period
    if any(s <= i < s + p for i in wrt):
        s, loop = s + p, Loop(s + p, p, loop.reps - 1, loop.refs)
    reps = loop.reps
    end = loop.end

    def block(i: int) -> int | None:
        return (i - s) // p if s <= i < end else None

    for i in range(end, len(order)):
        node = order[i]
        if isinstance(node, Operator):
            for x in node.inputs:
                # A constant is read from the namespace wherever it sits.
                k = None if isinstance(x, Constant) else block(slot[x])
                if k is not None:
                    reps = min(reps, k + 1)
    for i in outputs:
        k = block(i)
        if k is not None:
            reps = min(reps, k + 1)
    for i in wrt:
        k = block(i)
        if k is not None:
            reps = min(reps, k)
    if reps < limits.MIN_REPS:
        return None
    return loop if reps == loop.reps else Loop(s, p, reps, loop.refs)


def find_loops(order: Sequence[Node], inputs: Sequence[Sequence[int] | None],
               outputs: Sequence[int], wrt: Sequence[int],
               signature: np.ndarray[Any, np.dtype[np.int64]], min_nodes: int,
               most: int = 8, max_lag: int = 1) -> list[Loop]:
    """Non-overlapping loops a scalar function may write, in order: the longest
    repeated block, then the longest in what lies before and after it, and so on."""
    slot = {n: i for i, n in enumerate(order)}
    c = codes(order, inputs)
    found: list[Loop] = []
    spans = [(0, len(order))]
    while spans and len(found) < most:
        lo, hi = spans.pop()
        if hi - lo < min_nodes:
            continue
        loop = find_loop(order[:hi], slot, _prefix(c, hi), min_nodes, lo, max_lag)
        if loop is not None and loop.start < lo:
            # The run began in a loop found before: keep the blocks after it.
            skip = -(-(lo - loop.start) // loop.period)
            loop = Loop(loop.start + skip * loop.period, loop.period, loop.reps - skip,
                        loop.refs)
        if loop is None or loop.reps < limits.MIN_REPS:
            continue
        loop = uniform(loop, signature)
        if loop is not None:
            loop = limit(loop, order, slot, outputs, wrt)
        if loop is None or loop.start < lo:
            continue
        found.append(loop)
        spans += [(lo, loop.start), (loop.end, hi)]
    return sorted(found, key=lambda lp: lp.start)


def _prefix(c: Codes, hi: int) -> Codes:
    return Codes(c.code[:hi], c.const[:hi], c.inputs[:hi])


def array_loops(ir: Any, loops: Sequence[Loop]) -> list[Loop]:
    """The loops general code may write: those whose last block is read from outside
    the loop only at carried positions (the backward loop hands in only their
    gradients), cut short by one block where that makes it so."""
    n = len(ir.order)
    readers: dict[int, set[int]] = {}
    for i, ins in enumerate(ir.inputs):
        for x in ins or ():
            readers.setdefault(x, set()).add(i)
    outs = set(ir.outputs) | {s for s in ir.wrt or () if s is not None}
    kept = []
    for lp in loops:
        for _ in range(2):
            if lp.reps < limits.MIN_REPS:
                break
            last = lp.end - lp.period
            carried = set(lp.window)
            outside = {x - last for x in range(last, min(lp.end, n))
                       if x in outs or any(r >= lp.end for r in readers.get(x, ()))}
            if outside <= carried:
                kept.append(lp)
                break
            lp = Loop(lp.start, lp.period, lp.reps - 1, lp.refs)
    return kept
