"""What ``Operator.shape`` asks before a node has a value: its static shape.

Static shape inference (``autodag.shapes``) sits in a higher layer than the nodes, so it
installs itself here when it is imported (``autodag`` imports it); until then, and for
a node whose shape cannot be inferred, the answer is None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["install", "static_shape"]

Infer = Callable[[Any], "tuple[int, ...] | None"]


def _unknown(node: Any) -> tuple[int, ...] | None:
    return None


_infer: Infer = _unknown


def static_shape(node: Any) -> tuple[int, ...] | None:
    """The node's static shape, or None where it cannot be inferred."""
    return _infer(node)


def install(fn: Infer) -> None:
    """Make ``fn`` what ``static_shape`` asks."""
    global _infer
    _infer = fn
