"""Array namespaces handed to backward rules as ``xp``.

``NumericNamespace`` is the one for numbers: a name resolves to the registered op of
that name (run eagerly through its forward rule, so ``xp.getitem`` or ``xp.relu`` mean
exactly what the op means) and otherwise to the function of that name of the run's
array namespace (NumPy's, or another backend's). The one for symbols, which builds
graph nodes, is ``autodag.graph_namespace.GraphNamespace``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .opdef import REQUIRED, OpDef

if TYPE_CHECKING:
    from .registry import Registry

__all__ = ["NumericNamespace"]


class NumericNamespace:
    """``xp`` for numeric differentiation: registered ops first, then the functions of
    the run's array namespace (NumPy, or another backend's: Dask, CuPy...)."""

    symbolic = False

    def __init__(self, registry: Registry, backend: Any = np) -> None:
        self._registry = registry
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        reg = self._registry.ops.get(name)
        fn: Any
        if reg is not None:
            fn = _eager(reg.opdef)
            if self._backend is not np and not reg.opdef.array_api:
                fn = _refused(reg.opdef.name, reg.plugin.describe(), self._backend)
        else:
            try:
                fn = getattr(self._backend, name)
            except AttributeError:
                where = getattr(self._backend, "__name__", "the backend")
                raise AttributeError(
                    f"xp has no {name!r}: it is neither a registered op nor a name of {where}"
                ) from None
        # Cache on the instance: the registry snapshot this namespace serves never changes.
        setattr(self, name, fn)
        return fn

    @staticmethod
    def ndim(x: Any) -> int:
        """Number of dimensions of a value (read from it, never by converting it)."""
        return len(np.shape(x))

    @staticmethod
    def shape(x: Any) -> tuple[int, ...]:
        """Shape of a value."""
        return tuple(np.shape(x))


def _refused(op: str, plugin: str, backend: Any) -> Callable[..., Any]:
    """An op a rule asks for whose forward is NumPy-only, on another backend: an error."""
    from .backend import BackendError, backend_name

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise BackendError(
            f"a backward rule calls op {op!r} from plugin {plugin}, whose forward is "
            f"NumPy-only (OpDef.array_api is False), on {backend_name(backend)} arrays; "
            "values are never converted to NumPy"
        )

    return refuse


def _eager(opdef: OpDef) -> Callable[..., Any]:
    """The op run eagerly: ``forward`` after ``bind`` checks and completes the call.

    A call with exactly the inputs positionally and only attributes by keyword (how
    backward rules call ops) is bound here without ``bind``: the result is the same.
    """
    bind, forward, arity = opdef.bind, opdef.forward, opdef.arity
    defaults = dict(opdef.attributes)

    def call(*args: Any, **kwargs: Any) -> Any:
        inputs, attrs = bind(args, kwargs)
        return forward(*inputs, **attrs)

    if arity is None:
        return call
    if not defaults:

        def plain(*args: Any, **kwargs: Any) -> Any:
            if not kwargs and len(args) == arity:
                return forward(*args)
            return call(*args, **kwargs)

        return plain
    names = defaults.keys()
    required = frozenset(k for k, v in defaults.items() if v is REQUIRED)

    def with_attrs(*args: Any, **kwargs: Any) -> Any:
        if len(args) == arity and kwargs.keys() <= names and required <= kwargs.keys():
            return forward(*args, **{**defaults, **kwargs})
        return call(*args, **kwargs)

    return with_attrs
