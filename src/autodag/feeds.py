"""Feeds: a call's ``feed_dict`` checked against the placeholders, and each plan
leaf's value for the call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import FeedError
from .interpreter import PlanBase, Values, missing_feed
from .nodes import Node, Operator, Placeholder, Variable, as_value

__all__ = ["leaf_values", "resolve_feeds"]


def _scalar_float_feed(node: Node, value: Any) -> bool:
    """A Python float for a float placeholder of any or scalar shape: nothing to check."""
    return (value.__class__ is float and node.__class__ is Placeholder
            and node.dtype.kind == "f"
            and node.declared_shape in (None, ()))


def resolve_feeds(order: Sequence[Node], feed_dict: Mapping[Any, Any] | None) -> Values:
    """Feed dict keyed by nodes (or node names), validated against the placeholders."""
    if not feed_dict:
        return {}
    feeds: Values = {}
    by_name: dict[str, Node] | None = None
    for key, value in feed_dict.items():
        if (value.__class__ is float and key.__class__ is Placeholder
                and key.dtype.kind == "f" and key.declared_shape in (None, ())):
            feeds[key] = value  # the common case of scalar graphs, with nothing to check
            continue
        if isinstance(key, Node):
            node = key
        elif isinstance(key, str):
            if by_name is None:
                by_name = {n.name: n for n in order if not isinstance(n, Operator)}
            found = by_name.get(key)
            if found is None:
                _check_known_name(key, order)
                continue  # a name the requested outputs do not depend on
            node = found
        else:
            raise FeedError(f"feed_dict keys must be nodes or names, got {type(key).__name__}")
        if isinstance(node, Operator):
            raise FeedError(f"cannot feed operator node {node.name!r}; feed placeholders")
        if isinstance(node, Placeholder):
            feeds[node] = value if _scalar_float_feed(node, value) else node.check_feed(value)
        elif isinstance(node, Variable):
            feeds[node] = as_value(value, f"feed for Variable {node.name!r}", FeedError)
        else:
            raise FeedError(f"cannot feed constant {node.name!r}")
    return feeds


def _check_known_name(name: str, order: Sequence[Node]) -> None:
    """A name no node of the graph has is a typo, not a feed to ignore."""
    graphs = {id(n.graph): n.graph for n in order}.values()
    names = {n.name for g in graphs for n in g.nodes}
    if name in names:
        return
    import difflib

    close = difflib.get_close_matches(name, sorted(names), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise FeedError(f"feed_dict names {name!r}, but no node of the graph is called that{hint}")


def leaf_values(plan: PlanBase, feeds: Values) -> list[Any]:
    """Current values of the plan's leaves: fed values, else the Variables' own."""
    out = []
    for node in plan.leaves:
        v = feeds.get(node, feeds) if feeds else feeds
        if v is feeds:
            if isinstance(node, Placeholder):
                raise missing_feed(node)
            v = node.value
        out.append(v)
    return out
