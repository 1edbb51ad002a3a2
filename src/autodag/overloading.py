"""Operator overloading: which Python operator or method of a node builds which op.

``Overloads`` is the mixin ``autodag.Node`` takes its operators and array methods from.
It holds no state and knows no node class: every operator names its op and hands it,
with the operands, to one of two hooks the node class provides: ``_binary`` for binary
operators (it answers ``NotImplemented`` for an operand it does not take) and ``_call``
for the rest. Ops other than the built-in arithmetic (``getitem``, ``sum``...) are
available when a plugin provides them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ArgumentError, NumpyFunctionError
from .npcalls import array_function, array_ufunc

if TYPE_CHECKING:
    from .nodes import Operator

__all__ = ["Overloads"]

_S = TypeVar("_S", bound="Overloads")


class Overloads:
    """Python operators and NumPy-style methods that build op nodes."""

    __array_priority__ = 1000
    __slots__ = ()

    name: str

    @staticmethod
    def _binary(op_name: str, a: Any, b: Any) -> Any:
        """The node of op ``op_name`` applied to ``a`` and ``b``, or NotImplemented."""
        raise NotImplementedError

    @staticmethod
    def _call(op_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Operator:
        """The node of op ``op_name`` called with ``args`` and ``kwargs``."""
        raise NotImplementedError

    # --- NumPy's functions and ufuncs on nodes (autodag.npcalls) -----------------------
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return array_ufunc(self._call, ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return array_function(self._call, func, tuple(args), dict(kwargs))

    if not TYPE_CHECKING:
        # Hidden from type checkers: NumPy's stubs would take a node for an array then
        # (``ndarray @ node`` typed as an ndarray, not the node it is).
        def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
            # Without this NumPy would make a 0-d object array holding the node.
            raise NumpyFunctionError(
                f"node {self.name!r} is a graph node, not an array: NumPy asked for its "
                f"value; compute it with autodag.evaluate(node) and use the result"
            )

    # --- arithmetic -----------------------------------------------------------------
    def __add__(self, other: Any) -> Any:
        return self._binary("add", self, other)

    def __radd__(self, other: Any) -> Any:
        return self._binary("add", other, self)

    def __sub__(self, other: Any) -> Any:
        return self._binary("subtract", self, other)

    def __rsub__(self, other: Any) -> Any:
        return self._binary("subtract", other, self)

    def __mul__(self, other: Any) -> Any:
        return self._binary("multiply", self, other)

    def __rmul__(self, other: Any) -> Any:
        return self._binary("multiply", other, self)

    def __truediv__(self, other: Any) -> Any:
        return self._binary("divide", self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return self._binary("divide", other, self)

    def __pow__(self, other: Any) -> Any:
        return self._binary("power", self, other)

    def __rpow__(self, other: Any) -> Any:
        return self._binary("power", other, self)

    def __matmul__(self, other: Any) -> Any:
        return self._binary("matmul", self, other)

    def __rmatmul__(self, other: Any) -> Any:
        return self._binary("matmul", other, self)

    def __mod__(self, other: Any) -> Any:
        return self._binary("mod", self, other)

    def __rmod__(self, other: Any) -> Any:
        return self._binary("mod", other, self)

    def __neg__(self) -> Operator:
        return self._call("negate", (self,), {})

    def __pos__(self: _S) -> _S:
        return self

    def __abs__(self) -> Operator:
        return self._call("abs", (self,), {})

    # Ordering comparisons build comparison nodes; == and != stay identity (dict keys).
    def __lt__(self, other: Any) -> Any:
        return self._binary("less", self, other)

    def __le__(self, other: Any) -> Any:
        return self._binary("less_equal", self, other)

    def __gt__(self, other: Any) -> Any:
        return self._binary("greater", self, other)

    def __ge__(self, other: Any) -> Any:
        return self._binary("greater_equal", self, other)

    __hash__ = object.__hash__

    # --- array sugar, available when a plugin provides the op ------------------------
    def __iter__(self) -> Any:
        # Without this, __getitem__ would make nodes "iterable" forever (np.array([x, y])
        # or list(x) would build getitem nodes without end).
        raise ArgumentError(f"node {self.name!r} is not iterable; index it with x[i]")

    def __getitem__(self, index: Any) -> Operator:
        return self._call("getitem", (self, index), {})

    def sum(self, axis: Any = None, keepdims: bool = False) -> Operator:
        """``sum(self, axis, keepdims)``."""
        return self._call("sum", (self,), {"axis": axis, "keepdims": keepdims})

    def mean(self, axis: Any = None, keepdims: bool = False) -> Operator:
        """``mean(self, axis, keepdims)``."""
        return self._call("mean", (self,), {"axis": axis, "keepdims": keepdims})

    def max(self, axis: Any = None, keepdims: bool = False) -> Operator:
        """``max(self, axis, keepdims)``."""
        return self._call("max", (self,), {"axis": axis, "keepdims": keepdims})

    def min(self, axis: Any = None, keepdims: bool = False) -> Operator:
        """``min(self, axis, keepdims)``."""
        return self._call("min", (self,), {"axis": axis, "keepdims": keepdims})

    def prod(self, axis: Any = None, keepdims: bool = False) -> Operator:
        """``prod(self, axis, keepdims)``."""
        return self._call("prod", (self,), {"axis": axis, "keepdims": keepdims})

    def var(self, axis: Any = None, ddof: float = 0, keepdims: bool = False) -> Operator:
        """``var(self, axis, ddof, keepdims)``."""
        return self._call("var", (self,), {"axis": axis, "ddof": ddof, "keepdims": keepdims})

    def std(self, axis: Any = None, ddof: float = 0, keepdims: bool = False) -> Operator:
        """``std(self, axis, ddof, keepdims)``."""
        return self._call("std", (self,), {"axis": axis, "ddof": ddof, "keepdims": keepdims})

    def argmax(self, axis: Any = None) -> Operator:
        """``argmax(self, axis)`` (no gradient)."""
        return self._call("argmax", (self,), {"axis": axis})

    def argmin(self, axis: Any = None) -> Operator:
        """``argmin(self, axis)`` (no gradient)."""
        return self._call("argmin", (self,), {"axis": axis})

    def cumsum(self, axis: Any = None) -> Operator:
        """``cumsum(self, axis)``."""
        return self._call("cumsum", (self,), {"axis": axis})

    def ravel(self) -> Operator:
        """``ravel(self)``."""
        return self._call("ravel", (self,), {})

    def reshape(self, *shape: Any) -> Operator:
        """``reshape(self, shape)``; takes ``x.reshape(2, 3)`` or ``x.reshape((2, 3))``."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return self._call("reshape", (self, tuple(shape)), {})

    def transpose(self, *axes: Any) -> Operator:
        """``transpose(self, axes)``."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return self._call("transpose", (self, tuple(axes) if axes else None), {})

    @property
    def T(self) -> Operator:
        """``transpose(self)``."""
        return self._call("transpose", (self,), {})
