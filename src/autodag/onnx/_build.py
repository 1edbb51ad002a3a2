"""The ONNX graph being built: unique names, nodes, initializers (onnx imported by caller)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Builder", "safe_name"]


def safe_name(name: str) -> str:
    """A C identifier made from a node name (``add/0`` -> ``add_0``)."""
    out = re.sub(r"\W", "_", name, flags=re.ASCII) or "v"
    return f"_{out}" if out[0].isdigit() else out


@dataclass
class Builder:
    """Nodes and initializers of one export, and the names already taken."""

    onnx: Any
    nodes: list[Any] = field(default_factory=list)
    initializers: list[Any] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)
    #: Small constants already made: (dtype, shape, bytes) -> name.
    constants: dict[tuple[str, tuple[int, ...], bytes], str] = field(default_factory=dict)

    def fresh(self, hint: str) -> str:
        """A name not used yet, made from ``hint``."""
        base = safe_name(hint)
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name

    def node(self, op_type: str, inputs: list[str], hint: str, n_outputs: int = 1,
             domain: str = "", **attrs: Any) -> list[str]:
        """Append one ONNX node; the names of its outputs."""
        outs = [self.fresh(f"{hint}_{op_type}") for _ in range(n_outputs)]
        self.nodes.append(self.onnx.helper.make_node(
            op_type, inputs, outs, name=self.fresh(f"{hint}_{op_type}_node"),
            domain=domain or None, **attrs))
        return outs

    def initializer(self, value: Any, hint: str) -> str:
        """An initializer holding ``value`` (an array or number), under a fresh name."""
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"dtype {arr.dtype} has no ONNX tensor type here")
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        small = arr.size <= 16
        if small and key in self.constants:
            return self.constants[key]
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(
            np.array(arr, order="C"), name))
        if small:
            self.constants[key] = name
        return name

    def used_initializers(self, outputs: list[str]) -> list[Any]:
        """The initializers some node reads (Constants a converter inlined are not)."""
        read = {i for n in self.nodes for i in n.input} | set(outputs)
        return [t for t in self.initializers if t.name in read]
