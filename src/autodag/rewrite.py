"""``Rewrite``: one improvement of a graph that ``compile`` may make, as plain data.

Plugins return rewrites from the ``autodag_rewrites`` hook (name -> ``Rewrite``), as they
return ops from ``autodag_register_ops``. The compiler offers each operator node whose op
is in ``ops`` to ``apply``, which returns the node's replacement or None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["ANY_OP", "Rewrite"]

#: ``Rewrite.ops`` of a rewrite offered every operator node.
ANY_OP: Final = "*"


@dataclass(frozen=True)
class Rewrite:
    """A graph rewrite: which ops it looks at, how it replaces a node, and whether it
    keeps every value bit for bit.

    ``apply(ctx, node)`` returns a node computing the same value (built through
    ``ctx.build``, or one of the graph's nodes) or None to leave ``node`` alone. A
    replacement of another shape or dtype is refused (``RewriteError``). ``exact=False``
    marks a rewrite that may change rounding or results outside a domain: it runs only
    when named in ``compile(..., enable_rewrites=[...])``.
    """

    ops: tuple[str, ...]
    apply: Callable[[Any, Any], Any]
    doc: str
    exact: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.ops, tuple) or not self.ops or not all(
                isinstance(o, str) and o for o in self.ops):
            raise TypeError(f"Rewrite.ops must be a non-empty tuple of op names, got "
                            f"{self.ops!r}")
        if not callable(self.apply):
            raise TypeError(f"Rewrite.apply must be callable, got {self.apply!r}")
        if not isinstance(self.doc, str) or not self.doc.strip():
            raise TypeError("Rewrite.doc must be a one-line description")
