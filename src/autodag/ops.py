"""Every registered op as a function: ``autodag.ops.matmul(a, b)``, ``autodag.ops.exp(x)``.

Calls build Operator nodes. Inputs that are not nodes become Constants; arguments after
the inputs, and keywords, are the op's attributes (``ops.sum(x, axis=0)``). NumPy's
``linalg`` functions are ``autodag.ops.linalg.<name>`` (the ops ``linalg_<name>``).

Type checkers read ``ops.pyi``, generated from the built-in and first-party ops
(``python -m autodag.opstubs``): they see each op's signature and flag a misspelt name.
Another plugin's op is ``autodag.ops.get("name")`` for them (``autodag.ops.<name>``
works at run time for every op).
"""

from __future__ import annotations

import inspect
from typing import Any

from .nodes import Operator, make_operator
from .opsig import signature_of
from .registry import RegisteredOp, get_registry

__all__: list[str] = []


class OpFunction:
    """A registered op, callable like its NumPy namesake; builds an Operator node."""

    def __init__(self, registered: RegisteredOp) -> None:
        self.registered = registered
        self.__name__ = registered.opdef.name
        self.__doc__ = registered.opdef.doc or f"The {registered.opdef.name!r} op."

    @property
    def __signature__(self) -> inspect.Signature:
        """Inputs, attributes and ``name``, for ``inspect.signature`` and IDEs."""
        return signature_of(self.registered.opdef)

    def __call__(self, *args: Any, **kwargs: Any) -> Operator:
        return make_operator(self.registered, args, kwargs)

    def __repr__(self) -> str:
        return (
            f"<autodag op {self.__name__!r} from plugin "
            f"{self.registered.plugin.describe()}>"
        )


class Namespace:
    """``autodag.ops.linalg``: the ops ``<prefix>_<name>`` as ``<name>``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        registered = get_registry().get(f"{self.prefix}_{name}")
        # numpy.linalg.<name>'s own result where it is not one node (eigh, svd, qr,
        # slogdet): a named tuple of nodes, as NumPy returns.
        return registered.opdef.numpy_function or OpFunction(registered)

    def __dir__(self) -> list[str]:
        start = self.prefix + "_"
        return sorted(n[len(start):] for n in get_registry().ops if n.startswith(start))


linalg = Namespace("linalg")


def get(name: str) -> OpFunction:
    """The op called ``name`` (any plugin's) as a function: ``get("cube")(x)``."""
    return OpFunction(get_registry().get(name))


def __getattr__(name: str) -> OpFunction:
    if name.startswith("__"):
        raise AttributeError(name)
    return get(name)


def __dir__() -> list[str]:
    return sorted({*get_registry().ops, "get", "linalg"})
