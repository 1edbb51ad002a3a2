"""What an op's rules use: the names they ask ``xp`` for, the ops they build as nodes.

From those come ``OpCheckResult.needs`` (other plugins' ops the op depends on) and the
explanation of an ``xp.<name>`` that no registered op provides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

from ..errors import OpNotFoundError
from ..nodes import Node, Operator
from ..registry import PluginInfo, RegisteredOp, Registry, get_registry

#: What the graph ``xp`` answers itself: not ops, so neither needs nor missing.
_STRUCTURAL: Final = frozenset({"ndim", "shape", "symbolic"})


class Recording:
    """The numeric ``xp`` that remembers every name a rule asks it for."""

    symbolic = False

    def __init__(self, inner: Any, asked: set[str]) -> None:
        self._inner = inner
        self._asked = asked

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self._asked.add(name)
        return getattr(self._inner, name)


class OpState:
    """What the samples of one op share: the names its rules asked ``xp`` for, the ops
    its rules built as nodes."""

    def __init__(self, registered: RegisteredOp) -> None:
        self.registered = registered
        self.registry: Registry = get_registry()
        self.asked: set[str] = set()
        self.built: dict[str, PluginInfo] = {}
        self.xp = Recording(self.registry.numeric, self.asked)
        opdef = registered.opdef
        for tpl in (opdef.inline, *(opdef.inline_vjps or ())):
            if tpl is not None:
                self.asked.update(re.findall(r"\bxp\.(\w+)", tpl))

    def record(self, nodes: Iterable[Node]) -> None:
        """Remember the ops of nodes a rule of this op built."""
        for n in nodes:
            if isinstance(n, Operator):
                self.built.setdefault(n.op.name, n.plugin)

    def needs(self) -> tuple[str, ...]:
        """``"op (plugin)"`` for every op of another, non-built-in plugin the rules use."""
        found = dict(self.built)
        for name in self.asked:
            reg = self.registry.ops.get(name)
            if reg is not None:
                found.setdefault(name, reg.plugin)
        own = self.registered.plugin.name
        return tuple(f"{n} ({p.name})" for p, n in sorted(
            ((p, n) for n, p in found.items() if not p.builtin and p.name != own),
            key=lambda pn: (pn[0].name, pn[1])))

    def missing(self, name: str) -> str:
        """The registry's explanation of a missing op: who would provide it."""
        try:
            self.registry.get(name)
        except OpNotFoundError as exc:
            return str(exc)
        return f"op {name!r} is registered now"

    def unregistered(self) -> list[str]:
        """Names the rules asked ``xp`` for that are neither registered ops nor structure."""
        return sorted(n for n in self.asked
                      if n not in self.registry.ops and n not in _STRUCTURAL)
