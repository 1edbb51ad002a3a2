"""Finding the op a stored node names (pickles, graph files) among the loaded plugins."""

from __future__ import annotations

import warnings
from typing import Any

from .errors import OpNotFoundError, PluginWarning
from .registry import RegisteredOp, get_registry

__all__ = ["operator_state", "restore_op", "set_operator_state"]


def operator_state(node: Any) -> dict[str, Any]:
    """An Operator's pickled state: its op stored as the op's name and provider (op
    definitions hold functions, not data), looked up in the registry again on load."""
    # The graph first: pickling it records every node in creation order, so a long
    # chain of inputs never recurses node by node.
    p = node.plugin
    return {
        "graph": node.graph, "name": node.name, "site": node.site, "_value": node._value,
        "gradient": node.gradient, "inputs": node.inputs, "attrs": dict(node.attrs),
        "op": node.op.name, "plugin": (p.name, p.distribution, p.version),
    }


def set_operator_state(node: Any, state: dict[str, Any]) -> None:
    """Restore what ``operator_state`` stored, the op found among the loaded plugins."""
    registered = restore_op(state["op"], tuple(state["plugin"]), f"node {state['name']!r}")
    for key, value in state.items():
        if key not in ("op", "plugin"):
            object.__setattr__(node, key, value)
    node.op, node.plugin = registered.opdef, registered.plugin


def restore_op(op_name: str, provider: tuple[str | None, ...], what: str) -> RegisteredOp:
    """The registered op a stored node names; an error naming the op and the distribution
    that provided it when no plugin does now, a warning when its version differs."""
    plugin, dist, version = (*provider, None, None, None)[:3]
    registry = get_registry()
    if op_name not in registry:
        source = f"distribution {dist!r} {version or ''}".rstrip() if dist else (
            f"plugin {plugin!r}")
        raise OpNotFoundError(
            f"cannot restore {what}: its op {op_name!r} came from {source}, and no loaded "
            f"plugin provides it now (install or register that plugin first)"
        )
    registered = registry.get(op_name)
    now = registered.plugin
    if (now.distribution, now.version) != (dist, version):
        was = f"{dist} {version}" if dist else f"plugin {plugin!r}"
        warnings.warn(
            f"restoring {what}: op {op_name!r} was stored from {was} and is now provided by "
            f"{now.describe()}; its results may differ",
            PluginWarning, stacklevel=3,
        )
    return registered
