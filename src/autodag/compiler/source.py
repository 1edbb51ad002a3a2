"""What emitters produce: blocks of statements with their def/use sets, and the
assembled source with a map from its lines to the nodes they compute."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

from ..nodes import Constant

__all__ = ["Block", "Line", "Source", "fields_of", "forward_expr", "rule_args", "twinned",
           "twins_of"]


class Block(NamedTuple):
    """Top-level statements that go together: a chunk boundary never falls inside."""

    lines: tuple[str, ...]
    #: Names the block binds, and names it reads that were bound before it.
    defs: frozenset[str]
    uses: frozenset[str]
    #: The slot whose forward value the block's first line computes, and the names it
    #: reads the op's inputs from, for errors.
    node: int | None = None
    args: tuple[str, ...] = ()
    backward: bool = False
    #: For a block of several ops (a loop): (line offset in the block, what it computes).
    marks: tuple[tuple[int, Line], ...] = ()
    #: Locals a line of the block lets go of as it reads them (``consume``).
    let_go: tuple[str, ...] = ()


class Line(NamedTuple):
    """What a line of generated code computes: the op at ``slot``, or for a line of a
    loop's block the op at that block position (its slot is ``start + k * period +
    position`` in iteration ``k``, which the loop keeps in the local ``counter``); and
    the names (locals, else namespace) its inputs are read from."""

    slot: int
    args: tuple[str, ...]
    period: int = 0
    counter: str = ""
    #: A line of the op's backward rules (else of its forward), and the local holding
    #: the op's incoming gradient there (``g{slot}`` when empty).
    backward: bool = False
    grad: str = ""
    #: Locals the op's lines let go of as they read them (``consume``): None there
    #: after such a read, so an error reading them must come from the interpreter.
    let_go: tuple[str, ...] = ()


class Source(NamedTuple):
    """Generated source, the namespace it runs in, and what its op lines compute."""

    text: str
    namespace: dict[str, Any]
    lines: dict[int, Line]


_FIELD: Final = re.compile(r"\{(g|out|\d+)\}")


@functools.lru_cache(maxsize=4096)
def fields_of(fmt: str) -> frozenset[str]:
    """The fields of a template's format string: ``g``, ``out``, ``0``, ``1``..."""
    return frozenset(_FIELD.findall(fmt))


def twinned(code: str, pure: bool, vals: Sequence[str], twins: Sequence[str | None],
            g: str, out: str) -> str:
    """``code`` filled in, with an int constant as its float twin when the expression's
    one other operand is a float array at run time: NumPy computes a float array with a
    Python float about twice as fast as with a Python int, and the result is the same
    (the constant is exactly a float, and a Python scalar takes the array's dtype)."""
    fields = fields_of(code) if pure else frozenset()
    consts = [f for f in fields if f.isdigit() and twins[int(f)] is not None]
    if len(fields) == 2 and len(consts) == 1:
        (other,) = fields - set(consts)
        k = int(consts[0])
        o = g if other == "g" else out if other == "out" else vals[int(other)]
        vals = list(vals)
        vals[k] = f"({twins[k]} if {o}.__class__ is _nd and {o}.dtype.kind == 'f' else {vals[k]})"
    return code.format(*vals, g=g, out=out)


def twins_of(order: Sequence[Any], inputs: Sequence[int], ns: dict[str, Any]) -> list[str | None]:
    """Per input slot: the name of a float twin of an int constant, or None."""
    twins: list[str | None] = []
    for s in inputs:
        x = order[s]
        v = x.value if isinstance(x, Constant) else None
        if v.__class__ is int and abs(v) < 2**53:  # exactly a float
            ns[f"cf{s}"] = float(v)
            twins.append(f"cf{s}")
        else:
            twins.append(None)
    return twins


def forward_expr(node: Any, slot: int, template: Any, vals: Sequence[str],
                 ns: dict[str, Any], twins: Sequence[str | None] | None = None) -> str:
    """The expression computing op ``node`` at ``slot`` from the locals ``vals``: its
    template written out, else a call of its forward rule (``f3``, attributes ``A3``)."""
    if template is not None:
        ns.update(template.names)
        if twins is not None:
            return twinned(template.fmt, template.pure, vals, twins, "", "")
        return str(template.fill(vals))
    ns[f"f{slot}"] = node.op.forward
    call = ", ".join(vals)
    if node.attrs:
        ns[f"A{slot}"] = dict(node.attrs)
        call = f"{call}, **A{slot}" if call else f"**A{slot}"
    return f"f{slot}({call})"


def rule_args(node: Any, slot: int, g: str, out: str, vals: Sequence[str],
              step: Any, ns: dict[str, Any]) -> str:
    """The argument list ``(xp, g, out, *inputs, **attrs)`` of a called backward rule,
    with None for the values the rules never read (so the plan may drop them)."""
    ins = ", ".join(v if step.reads_in[k] else "None" for k, v in enumerate(vals))
    kw = ""
    if node.attrs:
        ns[f"A{slot}"] = dict(node.attrs)
        kw = f", **A{slot}"
    return f"(xp, {g}, {out if step.reads_out else 'None'}, {ins}{kw})"
