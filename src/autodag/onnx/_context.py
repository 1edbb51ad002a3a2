"""The export context a converter gets: one node, its inputs, and the ONNX graph's builder."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

from ..errors import ExportError
from ..nodes import Constant, Node, Operator
from ._build import Builder

__all__ = ["Context", "Info"]

#: What is known of a node before it runs: its shape (None for a symbolic dimension,
#: None for the whole when unknown), its dtype (None when unknown), whether it is a
#: Python number (which takes the dtype of the arrays it meets, as in NumPy).
Info: TypeAlias = tuple[tuple[int | None, ...] | None, np.dtype[Any] | None, bool]

_UNKNOWN: Info = (None, None, False)


@dataclass
class Context:
    """One node being converted: its attributes, inputs' ONNX names, shapes and dtypes,
    and ``op``/``constant`` to add ONNX nodes (``onnx.helper`` underneath)."""

    node: Operator
    #: The ONNX names of the node's inputs, in order.
    inputs: tuple[str, ...]
    opset: int
    _builder: Builder
    _infos: Mapping[Node, Info]
    #: Why a node's shape is unknown, for the messages.
    _why: Mapping[Node, str]

    @property
    def attrs(self) -> Mapping[str, Any]:
        """The node's attributes (static parameters)."""
        return self.node.attrs

    @property
    def onnx(self) -> Any:
        """The ``onnx`` module, for what the helpers here do not cover."""
        return self._builder.onnx

    def fail(self, why: str) -> ExportError:
        """An ExportError naming this node, its op and plugin: ``raise ctx.fail(...)``."""
        return ExportError(f"cannot export {self.node.describe()} to ONNX: {why}")

    # What is known of the inputs and the output.
    def _info(self, i: int | None) -> Info:
        node = self.node if i is None else self.node.inputs[i]
        return self._infos.get(node, _UNKNOWN)

    def shape(self, i: int) -> tuple[int | None, ...] | None:
        """Input ``i``'s static shape (None for a symbolic dimension), or None."""
        return self._info(i)[0]

    def dtype(self, i: int) -> np.dtype[Any]:
        """Input ``i``'s dtype, or an ExportError when it cannot be inferred."""
        return self._need_dtype(i)

    def rank(self, i: int) -> int:
        """Input ``i``'s number of dimensions, or an ExportError when it is unknown."""
        shape = self._info(i)[0]
        if shape is None:
            raise self.fail(f"the shape of input {i} is unknown; declare placeholder shapes")
        return len(shape)

    @property
    def out_shape(self) -> tuple[int | None, ...] | None:
        """The output's static shape (None for a symbolic dimension), or None."""
        return self._info(None)[0]

    @property
    def out_dtype(self) -> np.dtype[Any]:
        """The output's dtype, or an ExportError when it cannot be inferred."""
        return self._need_dtype(None)

    @property
    def out_rank(self) -> int:
        """The output's number of dimensions, or an ExportError when it is unknown."""
        shape = self.out_shape
        if shape is None:
            raise self.fail("the shape of the output is unknown; declare placeholder shapes")
        return len(shape)

    def _need_dtype(self, i: int | None) -> np.dtype[Any]:
        dtype = self._info(i)[1]
        if dtype is None:
            what = "the output" if i is None else f"input {i}"
            node = self.node if i is None else self.node.inputs[i]
            raise self.fail(f"the dtype of {what} cannot be inferred: "
                            f"{self._why.get(node, 'its shape is unknown')}")
        return dtype

    def promoted(self, *indices: int) -> np.dtype[Any]:
        """The dtype NumPy gives the inputs ``indices`` (all by default) together."""
        idx = indices or tuple(range(len(self.inputs)))
        parts: list[Any] = []
        for i in idx:
            _, dtype, scalar = self._info(i)
            if dtype is None:
                raise self.fail(f"the dtype of input {i} cannot be inferred")
            parts.append(dtype.type(0).item() if scalar else dtype)
        return np.result_type(*parts)

    # Building ONNX nodes.
    def op(self, op_type: str, inputs: Sequence[str], domain: str = "", **attrs: Any) -> str:
        """Add an ONNX node of one output; its name. ``""`` skips an optional input."""
        return self._builder.node(op_type, list(inputs), self.node.name, 1, domain,
                                  **attrs)[0]

    def op_n(self, op_type: str, inputs: Sequence[str], n_outputs: int, **attrs: Any) -> list[str]:
        """Add an ONNX node of ``n_outputs`` outputs; their names."""
        return self._builder.node(op_type, list(inputs), self.node.name, n_outputs, **attrs)

    def constant(self, value: Any, dtype: Any = None) -> str:
        """An initializer holding ``value`` (in ``dtype`` if given); its name."""
        arr = np.asarray(value, dtype=dtype)
        return self._builder.initializer(arr, f"{self.node.name}_const")

    def ints(self, values: Iterable[int]) -> str:
        """A 1-D int64 constant (axes, shapes, pads...)."""
        return self.constant(np.array(list(values), dtype=np.int64).reshape(-1))

    def cast(self, name: str, have: np.dtype[Any] | None, want: Any) -> str:
        """``name`` cast from dtype ``have`` to ``want`` (itself when they agree)."""
        want = np.dtype(want)
        if have is not None and np.dtype(have) == want:
            return name
        to = self.onnx.helper.np_dtype_to_tensor_dtype(want)
        return self.op("Cast", [name], to=to)

    def input(self, i: int, dtype: Any = None) -> str:
        """Input ``i`` in ``dtype`` (default: the output's dtype), cast where needed; a
        Python-number Constant is written in that dtype directly."""
        want = self.out_dtype if dtype is None else np.dtype(dtype)
        src = self.node.inputs[i]
        if isinstance(src, Constant) and isinstance(src.value, (bool, int, float)):
            return self.constant(src.value, want)
        return self.cast(self.inputs[i], self._info(i)[1], want)

    def elementwise(self, op_type: str, **attrs: Any) -> str:
        """The ONNX op ``op_type`` on every input, each cast to the output's dtype."""
        return self.op(op_type, [self.input(i) for i in range(len(self.inputs))], **attrs)

    def compare(self, op_type: str) -> str:
        """The ONNX comparison ``op_type`` on the inputs in their promoted dtype."""
        dtype = self.promoted()
        return self.op(op_type, [self.input(i, dtype) for i in range(len(self.inputs))])

    def axes(self, axis: Any, rank: int | None = None) -> tuple[int, ...]:
        """``axis`` (None, an int or a sequence) as sorted non-negative axes of a value of
        ``rank`` dimensions (default: input 0's); None means every axis."""
        r = self.rank(0) if rank is None else rank
        if axis is None or r == 0:  # a 0-d value's only axes: none
            return tuple(range(r))
        items = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        return tuple(sorted({int(a) % r for a in items}))

    def reduce(self, op_type: str, x: str, axes: Sequence[int], keepdims: bool) -> str:
        """``op_type`` (ReduceSum, ReduceMax...) of ``x`` over ``axes``, in this opset's form."""
        if not axes:
            return self.op("Identity", [x])
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.ints(axes)], keepdims=int(keepdims))
        return self.op(op_type, [x], axes=list(axes), keepdims=int(keepdims))

    def shape_of(self, name: str) -> str:
        """The run-time shape of ``name`` (an int64 1-D value)."""
        return self.op("Shape", [name])
