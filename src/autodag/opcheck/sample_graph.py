"""A sample as a graph: Variables for its float inputs, Constants for the rest, the op
node on them, built through the same calls users make."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..graph import Graph
from ..nodes import Constant, Node, Operator, Variable, make_operator
from .case import Case, is_float


@dataclass
class SampleGraph:
    """A graph holding one sample: Variables for the float inputs, the op node on them."""

    graph: Graph
    y: Operator
    #: The Variables of the float inputs, by input position.
    variables: dict[int, Variable]
    #: Positions of the inputs gradients are taken for: float inputs with a rule.
    wrt: list[int]

    def xs(self) -> list[Node]:
        """The Variables gradients are taken for."""
        return [self.variables[k] for k in self.wrt]


def build(case: Case, values: Sequence[Any]) -> SampleGraph:
    """The sample (with ``values`` as its inputs) as a graph."""
    opdef = case.opdef
    graph = Graph()
    variables: dict[int, Variable] = {}
    try:
        with graph:
            nodes: list[Node] = []
            for k, v in enumerate(values):
                if is_float(v):
                    variables[k] = Variable(v, name=f"x{k}")
                    nodes.append(variables[k])
                else:
                    nodes.append(Constant(v, name=f"c{k}"))
            args = (nodes,) if opdef.arity is None else tuple(nodes)
            y = make_operator(case.state.registered, args, dict(case.attrs))
    except (TypeError, ValueError) as exc:
        raise case.fail(
            f"the sample cannot be made a graph node ({type(exc).__name__}: {exc})"
        ) from exc
    vjps = opdef.vjps
    wrt = [k for k in variables if vjps is None or vjps[k] is not None]
    return SampleGraph(graph, y, variables, wrt)
