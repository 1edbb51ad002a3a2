"""Writing an op's gradient contributions as scalar code: shared by the scalar function
and its loops. Every rule is a template, every gradient a Python number, so a
contribution is one expression added to a named gradient."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .source import fields_of
from .templates import Written

__all__ = ["Grads", "add_to", "emit_rules"]


class Grads:
    """The gradients written so far: ``name[key]`` is what holds gradient ``key``
    (itself, or an alias such as the gradient a pass-through rule forwards); the keys
    some rule added to (``touched``); the local names rules read values from."""

    __slots__ = ("name", "reads", "touched")

    def __init__(self, name: dict[str, str] | None = None) -> None:
        self.name: dict[str, str] = {} if name is None else name
        self.touched: set[str] = set()
        self.reads: set[str] = set()


def add_to(emit: Callable[[str], None], grads: Grads, key: str, expr: str,
           alias: bool) -> bool:
    """Add ``expr`` to the gradient ``key``; a first contribution that is a bare name is
    only named when ``alias``, until a second one needs a sum of its own. Whether a
    line was written."""
    name = grads.name
    prev = name.get(key)
    if prev is None and alias:
        name[key] = expr
        return False
    if prev is None:
        emit(f"{key} = {expr}")
    elif prev == key:
        emit(f"{key} += {expr}")
    else:
        emit(f"{key} = {prev} + {expr}")
    name[key] = key
    return True


def emit_rules(emit: Callable[[str], None], w: Written, want: Sequence[bool], gi: str,
               vals: Sequence[str], out: str, keys: Sequence[str], grads: Grads) -> None:
    """The lines adding an op's contributions (gradient ``gi``, inputs ``vals``, output
    ``out``) to its inputs' gradients ``keys``."""
    for k, key in enumerate(keys):
        code = w.walrus[k] if k < len(w.walrus) else None
        if not want[k] or code is None:
            continue
        for f in fields_of(code):
            if f.isdigit():
                grads.reads.add(vals[int(f)])
            elif f == "out":
                grads.reads.add(out)
        grads.touched.add(key)
        # A pass-through rule ({g}) makes no copy: it names its op's gradient.
        if not add_to(emit, grads, key, code.format(*vals, g=gi, out=out), alias=code == "{g}"):
            continue
        if not w.pure[k]:  # a call may answer in NumPy
            emit(f"if {key}.__class__ is not float: return None")
