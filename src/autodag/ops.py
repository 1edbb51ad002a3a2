"""Every registered op as a function: ``autodag.ops.matmul(a, b)``, ``autodag.ops.exp(x)``.

Calls build Operator nodes. Inputs that are not nodes become Constants; arguments after
the inputs, and keywords, are the op's attributes (``ops.sum(x, axis=0)``).
"""

from __future__ import annotations

from typing import Any

from .nodes import Operator, make_operator
from .registry import RegisteredOp, get_registry

__all__: list[str] = []


class OpFunction:
    """A registered op, callable like its NumPy namesake; builds an Operator node."""

    def __init__(self, registered: RegisteredOp) -> None:
        self.registered = registered
        self.__name__ = registered.opdef.name
        self.__doc__ = registered.opdef.doc or f"The {registered.opdef.name!r} op."

    def __call__(self, *args: Any, **kwargs: Any) -> Operator:
        return make_operator(self.registered, args, kwargs)

    def __repr__(self) -> str:
        return (
            f"<autodag op {self.__name__!r} from plugin "
            f"{self.registered.plugin.describe()}>"
        )


def __getattr__(name: str) -> OpFunction:
    if name.startswith("__"):
        raise AttributeError(name)
    return OpFunction(get_registry().get(name))


def __dir__() -> list[str]:
    return sorted(get_registry().ops)
