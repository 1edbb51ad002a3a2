"""ONNX export: ``autodag.onnx.export(outputs, path, inputs=[...])``.

Needs the ``onnx`` extra (``pip install autodag[onnx]``), imported only when a graph is
exported, so ``import autodag`` and every plugin load without it. Each op is converted by
the converter a plugin gives for it through the ``autodag_onnx_converters`` hook (op
name -> function of a ``Context``, returning the name of the ONNX value it computed);
the built-in and first-party plugins give theirs the same way. An op without one is an
``ExportError`` naming the op, its plugin and the node.
"""

from __future__ import annotations

from ..hooktables import ONNX_CONVERTERS, Override
from ..registry import get_registry, get_table
from ._context import Context
from ._export import DEFAULT_OPSET, MIN_OPSET, export

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "Context", "Override", "converters", "export",
           "missing_converters"]


def converters() -> dict[str, str]:
    """Op name -> the name of the plugin whose ONNX converter it uses."""
    return {name: p.plugin.name for name, p in get_table(ONNX_CONVERTERS).items.items()}


def missing_converters() -> list[str]:
    """The registered ops no loaded plugin gives an ONNX converter for, sorted."""
    have = get_table(ONNX_CONVERTERS).items
    return sorted(name for name in get_registry().ops if name not in have)
