"""``xp`` for rules run on nodes: a registered op's name builds a node of the graph,
``shape`` and ``ndim`` come from static shape inference.

The namespace for numbers is ``namespace.NumericNamespace``; ``autodag.gradients`` and
``autodag.jvp`` hand backward and jvp rules this one instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import OpNotFoundError, SymbolicGradientError
from .nodes import Node, Operator, make_operator
from .registry import Registry
from .shapes import StaticShapes

__all__ = ["GraphNamespace"]


class GraphNamespace:
    """``xp`` for symbolic differentiation: registered ops build nodes of one graph.

    ``ndim`` and ``shape`` come from static shape inference. Any name that is not a
    registered op is an error naming the op whose rule asked for it.
    """

    symbolic = True

    def __init__(self, registry: Registry, shapes: StaticShapes) -> None:
        self._registry = registry
        self._shapes = shapes
        #: The operator whose rule is running, for error messages.
        self.current: Operator | None = None

    def _context(self) -> str:
        node = self.current
        if node is None:
            return "while building symbolic derivatives"
        return f"by the derivative rule of {node.describe()}"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            reg = self._registry.get(name)
        except OpNotFoundError as exc:
            # The registry knows why: a close match, or the installed plugin not loaded.
            raise SymbolicGradientError(
                f"xp.{name} was used {self._context()}, but {name!r} is not a registered "
                f"op: symbolic derivatives (gradients, second order, forward mode) can only "
                f"use registered ops. Register an op {name!r}, or declare the op "
                f"symbolic=False (first-order autodag.grad only); {exc}"
            ) from exc

        def call(*args: Any, **kwargs: Any) -> Operator:
            return make_operator(reg, args, dict(kwargs))

        call.__name__ = name
        setattr(self, name, call)
        return call

    def shape(self, x: Any) -> tuple[int, ...]:
        """Static shape of a node (or of a plain value)."""
        if isinstance(x, Node):
            return self._shapes.require(x, self._context())
        return tuple(np.shape(x))

    def ndim(self, x: Any) -> int:
        """Static number of dimensions of a node (or of a plain value)."""
        return len(self.shape(x))
