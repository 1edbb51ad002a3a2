"""``export``: a graph's nodes in topological order, each turned into ONNX by its converter."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np

from ..errors import AutodagError, ExportError
from ..hooktables import ONNX_CONVERTERS, HookTable
from ..nodes import Constant, Node, Operator, Placeholder, Variable
from ..registry import get_table
from ..shapes import FED, StaticShapes
from ..shapes import Info as ShapeInfo
from ..traversal import topological_sort
from ._build import Builder
from ._context import Context, Info

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "export", "require_onnx"]

#: Opset 18: the first where every Reduce* op takes its axes as an input (ReduceSum
#: since 13), so reductions are written one way, and new enough for every converter
#: (ScatterElements' reduction="add" needs 16); onnxruntime has run it since 1.14 (1.30
#: and newer load every opset from 13 to 28), and most other runtimes read it, where a
#: newer default would shut out older ones. Opsets 13 to 17 work for most graphs
#: (reductions then take axes as attributes); ``opset=`` picks another.
DEFAULT_OPSET: Final = 18
MIN_OPSET: Final = 13
#: Stand-ins for symbolic dimensions while shapes are inferred: a dimension that comes
#: out the same for both is static, one that follows them is symbolic.
_STANDINS: Final = (2, 3)


def require_onnx() -> Any:
    """The ``onnx`` module, or an ExportError saying how to install it."""
    try:
        import onnx
    except ImportError as exc:
        raise ExportError("ONNX export needs the onnx package: pip install autodag[onnx] "
                          f"({exc})") from exc
    return onnx


class _StandinShapes(StaticShapes):
    """Static shapes with a placeholder's symbolic dimensions set to a stand-in."""

    def __init__(self, standin: int) -> None:
        super().__init__()
        self._standin = standin

    def _compute(self, n: Node) -> ShapeInfo | None:
        if isinstance(n, Placeholder) and n.declared_shape is not None:
            shape = tuple(self._standin if d is None else int(d) for d in n.declared_shape)
            return shape, n.dtype, False, FED
        return super()._compute(n)


def _why(shapes: StaticShapes, node: Node) -> str:
    try:
        shapes.require(node)
    except AutodagError as exc:
        return str(exc)
    return "its shape is unknown"


def _infos(order: Sequence[Node], why: dict[Node, str]) -> dict[Node, Info]:
    """Each node's static shape (None for a symbolic dimension) and dtype; ``why`` gets
    the reason of each unknown one."""
    symbolic = any(isinstance(n, Placeholder) and n.declared_shape is not None
                   and None in n.declared_shape for n in order)
    runs = [_StandinShapes(s) for s in (_STANDINS if symbolic else _STANDINS[:1])]
    out: dict[Node, Info] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in order:
            try:
                got = [r.info(n) for r in runs]
            except AutodagError:
                got = [None]
            known = [g for g in got if g is not None]
            if not known:
                out[n] = (None, None, False)
                why[n] = _why(runs[0], n)
                continue
            shape = _merged([k[0] for k in known]) if len(known) == len(got) else None
            out[n] = (shape, known[0][1], known[0][2])
    return out


def _merged(shapes: Sequence[tuple[int, ...]]) -> tuple[int | None, ...] | None:
    """The shape the stand-in runs agree on: a dimension that differs is symbolic."""
    first = shapes[0]
    if any(len(s) != len(first) for s in shapes):
        return None
    return tuple(d if all(s[j] == d for s in shapes) else None for j, d in enumerate(first))


def _check_nodes(order: Sequence[Node], inputs: Sequence[Node],
                 table: HookTable) -> None:
    """ExportError for a placeholder not among ``inputs`` or an op without converter."""
    fed = set(inputs)
    for n in order:
        if isinstance(n, Placeholder) and n not in fed:
            raise ExportError(f"Placeholder {n.name!r} (created at {n.where()}) is needed by "
                              "the outputs but not among the export's inputs=[...]")
        if isinstance(n, Operator) and n.op.name not in table.items:
            name = n.op.name
            if name in table.conflicts:
                raise ExportError(f"cannot export {n.describe()}: "
                                  f"{table.conflicts[name].describe()}")
            raise ExportError(
                f"cannot export {n.describe()} to ONNX: no loaded plugin gives a converter "
                f"for op {name!r} (through the autodag_onnx_converters hook)")


def _value_info(onnx: Any, name: str, dtype: np.dtype[Any],
                shape: Sequence[int | str | None] | None) -> Any:
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return onnx.helper.make_tensor_value_info(name, elem, None if shape is None else list(shape))


def _graph_input(b: Builder, node: Node, name: str) -> Any:
    if isinstance(node, Placeholder):
        if node.declared_shape is None:
            raise ExportError(f"Placeholder {node.name!r} (created at {node.where()}) has no "
                              "declared shape; give one, None for a symbolic dimension: "
                              "Placeholder(shape=(None, 3))")
        dims = [f"{name}_{k}" if d is None else int(d)
                for k, d in enumerate(node.declared_shape)]
        return _value_info(b.onnx, name, node.dtype, dims)
    if isinstance(node, Variable):
        value = np.asarray(node.value)
        return _value_info(b.onnx, name, value.dtype, value.shape)
    raise ExportError(f"export inputs must be Placeholders or Variables, got {node!r}")


def _convert(b: Builder, n: Operator, names: Mapping[Node, str], opset: int,
             known: tuple[Mapping[Node, Info], Mapping[Node, str]], table: HookTable) -> str:
    provided = table.items[n.op.name]
    converter: Callable[[Context], object] = provided.item
    ctx = Context(n, tuple(names[i] for i in n.inputs), opset, b, *known)
    try:
        out = converter(ctx)
    except AutodagError:
        raise
    except Exception as exc:
        raise ExportError(
            f"the ONNX converter of op {n.op.name!r} (from plugin "
            f"{provided.plugin.describe()}) failed on {n.describe()}: "
            f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(out, str) or out not in b.taken:
        raise ExportError(
            f"the ONNX converter of op {n.op.name!r} (from plugin "
            f"{provided.plugin.describe()}) returned {out!r} for {n.describe()}, not the "
            "name of an ONNX value it made (ctx.op returns one)")
    return out


def _leaf(b: Builder, n: Node) -> str:
    try:
        return b.initializer(n.value, n.name)
    except (TypeError, ValueError) as exc:
        raise ExportError(f"the value of {type(n).__name__} {n.name!r} (created at "
                          f"{n.where()}) cannot be stored in ONNX: {exc}") from exc


def _as_nodes(outputs: Node | Sequence[Node], what: str) -> list[Node]:
    items = [outputs] if isinstance(outputs, Node) else list(outputs)
    bad = [o for o in items if not isinstance(o, Node)]
    if bad or (what == "outputs" and not items):
        raise ExportError(f"export {what} must be nodes, got {bad[0]!r}" if bad
                          else "export needs at least one output node")
    return items


def export(outputs: Node | Sequence[Node], path: str | os.PathLike[str] | None = None,
           inputs: Sequence[Node] = (), *, opset: int = DEFAULT_OPSET,
           name: str = "autodag") -> Any:
    """The ONNX ModelProto computing ``outputs`` from ``inputs``; written to ``path``."""
    onnx = require_onnx()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ExportError(f"opset must be an int from {MIN_OPSET} to "
                          f"{onnx.defs.onnx_opset_version()}, got {opset!r}")
    outs, ins = _as_nodes(outputs, "outputs"), _as_nodes(inputs, "inputs")
    twice = sorted({n.name for n in ins if ins.count(n) > 1})
    if twice:
        raise ExportError(f"export inputs name {', '.join(map(repr, twice))} more than once")
    table = get_table(ONNX_CONVERTERS)
    order = topological_sort(outs)
    _check_nodes(order, ins, table)
    why: dict[Node, str] = {}
    infos = _infos(order, why)
    b = Builder(onnx)
    names: dict[Node, str] = {}
    graph_inputs = []
    for node in ins:
        names[node] = b.fresh(node.name)
        graph_inputs.append(_graph_input(b, node, names[node]))
    for n in order:
        if n in names:
            continue
        if isinstance(n, (Variable, Constant)):
            names[n] = _leaf(b, n)
        elif isinstance(n, Operator):
            names[n] = _convert(b, n, names, opset, (infos, why), table)
    graph_outputs = []
    for o in outs:
        out_name = b.fresh(o.name)
        b.nodes.append(onnx.helper.make_node("Identity", [names[o]], [out_name],
                                             name=b.fresh(f"{o.name}_output")))
        shape, dtype, _ = infos.get(o, (None, None, False))
        graph_outputs.append(_value_info(onnx, out_name, dtype or np.dtype(np.float64),
                                         shape))
    return _finish(onnx, b, name, graph_inputs, graph_outputs, opset, path)


def _finish(onnx: Any, b: Builder, name: str, graph_inputs: list[Any],
            graph_outputs: list[Any], opset: int, path: str | os.PathLike[str] | None) -> Any:
    """The checked model, written to ``path`` when given."""
    from .. import __version__

    graph = onnx.helper.make_graph(b.nodes, name, graph_inputs, graph_outputs,
                                   initializer=b.used_initializers([]))
    imports = [onnx.helper.make_opsetid("", opset)]
    model = onnx.helper.make_model(graph, opset_imports=imports, producer_name="autodag",
                                   producer_version=__version__)
    # The oldest IR version that carries this opset, so that older runtimes read it.
    model.ir_version = onnx.helper.find_min_ir_version_for(imports)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise ExportError(f"the exported ONNX model failed onnx.checker: "
                          f"{type(exc).__name__}: {exc}") from exc
    if path is not None:
        onnx.save(model, os.fspath(path))
    return model
