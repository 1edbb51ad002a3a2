"""Array namespaces handed to backward rules as ``xp``.

``NumericNamespace`` is the one for numbers: a name resolves to the registered op of
that name (run eagerly through its forward rule, so ``xp.getitem`` or ``xp.relu`` mean
exactly what the op means) and otherwise to NumPy's function of that name. The one for
symbols, which builds graph nodes, is ``autodag.symbolic.GraphNamespace``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .registry import Registry

__all__ = ["NumericNamespace"]


class NumericNamespace:
    """``xp`` for numeric differentiation: registered ops first, then NumPy."""

    symbolic = False

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        reg = self._registry.ops.get(name)
        fn: Any
        if reg is not None:
            fn = _eager(reg.opdef.bind, reg.opdef.forward)
        else:
            try:
                fn = getattr(np, name)
            except AttributeError:
                raise AttributeError(
                    f"xp has no {name!r}: it is neither a registered op nor a NumPy name"
                ) from None
        # Cache on the instance: the registry snapshot this namespace serves never changes.
        setattr(self, name, fn)
        return fn

    @staticmethod
    def ndim(x: Any) -> int:
        """Number of dimensions of a value."""
        return int(np.ndim(x))

    @staticmethod
    def shape(x: Any) -> tuple[int, ...]:
        """Shape of a value."""
        return tuple(np.shape(x))


def _eager(bind: Callable[..., Any], forward: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        inputs, attrs = bind(args, kwargs)
        return forward(*inputs, **attrs)

    return call
