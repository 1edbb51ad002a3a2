"""``autodag.save`` and ``autodag.load``: a graph as names and numbers, with no code.

A graph file is a ZIP archive (``autodag.archive``) holding ``autodag.json`` and the
arrays as ``arrays/<k>.npy``. The document (format ``autodag.graph``, version 1)::

    {"format": "autodag.graph", "version": 1, "autodag": "0.1.0",
     "outputs": [3], "single": true, "metadata": {"dict": {"epoch": 5}},
     "nodes": [
       {"kind": "variable", "name": "x", "value": 0.9, "site": ["train.py", 4]},
       {"kind": "constant", "name": "Const/0", "value": {"array": 0}, "site": null},
       {"kind": "placeholder", "name": "data", "dtype": "float64", "exact": false,
        "shape": [null, 2], "site": null},
       {"kind": "operator", "name": "mul/0", "op": "multiply", "inputs": [0, 2],
        "attrs": {}, "plugin": {"name": "builtin", "distribution": null, "version": null},
        "shape": [null, 2], "dtype": "float64", "site": ["train.py", 6]}]}

Nodes are listed inputs first; ``inputs`` and ``outputs`` are positions in that list.
Values and attributes are written as ``autodag.codec`` says. An operator is its op's
name: loading looks the op up among the loaded plugins (``LoadError`` naming the op and
the distribution that provided it when none does now; a ``PluginWarning`` when the
provider's version differs). ``shape`` and ``dtype`` are the statically known ones, for
readers; loading does not need them.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from .archive import Archive, write_archive
from .codec import decode, dtype_named, encode, index
from .errors import ArgumentError, AutodagError, LoadError, OpNotFoundError, SaveError
from .graph import Graph
from .nodeargs import as_nodes
from .nodes import Constant, Node, Operator, Placeholder, Variable
from .opdef import REQUIRED
from .oprestore import restore_op
from .shapes import StaticShapes
from .traversal import topological_sort

__all__ = ["FORMAT", "VERSION", "Loaded", "load", "save"]

FORMAT: Final = "autodag.graph"
#: The format version this autodag writes and the newest it reads.
VERSION: Final = 1
_KINDS: Final = {Variable: "variable", Constant: "constant", Placeholder: "placeholder",
                 Operator: "operator"}


def save(path: str | os.PathLike[str], outputs: Node | Sequence[Node], *,
         metadata: Mapping[str, Any] | None = None) -> None:
    """Save ``outputs`` and every node they depend on to the graph file ``path``.

    ``metadata`` is kept beside the graph (``Loaded.metadata``): a checkpoint's optimizer
    state (``opt.state_dict()``), step count or data-order seed. Its values are what a
    graph file holds: numbers, strings, booleans, None, lists, tuples, dicts with string
    keys and NumPy arrays.
    """
    outs = as_nodes(outputs, "outputs")
    if not outs:
        raise ArgumentError("save() needs at least one output node")
    order = topological_sort(outs)
    ids = {node: i for i, node in enumerate(order)}
    arrays: list[np.ndarray[Any, Any]] = []
    shapes = StaticShapes()
    document = {
        "format": FORMAT, "version": VERSION, "autodag": _version(),
        "outputs": [ids[o] for o in outs], "single": isinstance(outputs, Node),
        "nodes": [_record(node, ids, arrays, shapes) for node in order],
        "metadata": encode(dict(metadata or {}), arrays, "metadata"),
    }
    write_archive(path, document, arrays)


def _record(node: Node, ids: Mapping[Node, int], arrays: list[np.ndarray[Any, Any]],
            shapes: StaticShapes) -> dict[str, Any]:
    kind = _KINDS.get(type(node))
    if kind is None:
        raise SaveError(f"cannot save node {node.name!r}: {type(node).__name__} is not a "
                        "node kind a graph file holds")
    rec: dict[str, Any] = {"kind": kind, "name": node.name,
                           "site": list(node.site) if node.site else None}
    if isinstance(node, (Variable, Constant)):
        what = f"{kind} {node.name!r} (created at {node.where()}): its value"
        rec["value"] = encode(node.value, arrays, what)
    elif isinstance(node, Placeholder):
        rec.update(dtype=node.dtype.name, exact=node._exact,
                   shape=None if node.declared_shape is None else list(node.declared_shape))
    elif isinstance(node, Operator):
        p = node.plugin
        shape, dtype = _static(node, shapes)
        rec.update(op=node.op.name, inputs=[ids[i] for i in node.inputs],
                   attrs={k: encode(v, arrays, f"{node.describe()}: attribute {k!r}")
                          for k, v in node.attrs.items()},
                   plugin={"name": p.name, "distribution": p.distribution,
                           "version": p.version},
                   shape=shape, dtype=dtype)
    return rec


def _static(node: Operator, shapes: StaticShapes) -> tuple[list[int] | None, str | None]:
    try:
        shape, dtype = shapes.shape(node), shapes.dtype(node)
    except AutodagError:
        return None, None  # provenance only: a node inference cannot follow saves as is
    return (None if shape is None else list(shape)), (None if dtype is None else dtype.name)


def _version() -> str | None:
    try:
        return importlib.metadata.version("autodag")
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass
class Loaded:
    """What ``load`` returns: the new graph, its outputs as saved, and every node.

    ``loaded["w"]`` is the node named ``w``. Build more on the nodes inside
    ``with loaded.graph:``.
    """

    graph: Graph
    #: One node, or a list of them: as ``outputs`` was given to ``save``.
    outputs: Node | list[Node]
    #: Every node of the file, inputs first.
    nodes: list[Node] = field(default_factory=list)
    #: What ``save`` was given as ``metadata``.
    metadata: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Node:
        found = [n for n in self.nodes if n.name == name]
        if len(found) != 1:
            why = "no node" if not found else f"{len(found)} nodes"
            raise KeyError(f"{why} named {name!r} in the loaded graph")
        return found[0]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    @property
    def variables(self) -> list[Variable]:
        """The loaded Variables, in file order (what an optimizer trains)."""
        return [n for n in self.nodes if isinstance(n, Variable)]

    @property
    def placeholders(self) -> list[Placeholder]:
        """The loaded Placeholders, in file order (what a feed dict fills)."""
        return [n for n in self.nodes if isinstance(n, Placeholder)]


def load(path: str | os.PathLike[str]) -> Loaded:
    """Read a graph file written by ``save`` into a new graph; never runs code from it."""
    with Archive(path) as archive:
        doc = archive.document()
        where = str(archive.path)
        _check_document(doc, where)
        graph = Graph()
        nodes: list[Node] = []
        try:
            for i, rec in enumerate(doc["nodes"]):
                nodes.append(_node(rec, i, nodes, graph, archive, where))
            metadata = decode(doc.get("metadata", {"dict": {}}), archive.array,
                              f"{where}: metadata")
        except RecursionError:
            raise LoadError(f"{where}: a value is nested too deeply") from None
    _continue_counters(graph, nodes)
    if not isinstance(metadata, dict):
        raise LoadError(f"{where}: metadata must be a dict")
    outputs = [nodes[_ref(k, len(nodes), f"{where}: outputs")] for k in
               _list(doc, "outputs", where)]
    if doc.get("single") is True:
        if len(outputs) != 1:
            raise LoadError(f"{where}: 'single' is true but there are {len(outputs)} outputs")
        return Loaded(graph, outputs[0], nodes, metadata)
    return Loaded(graph, outputs, nodes, metadata)


def _continue_counters(graph: Graph, nodes: list[Node]) -> None:
    """Default names drawn after a load continue past the loaded ``prefix/N`` names, as
    they do in the saved graph, so a new node never takes a loaded node's name."""
    counts = graph._counts
    for node in nodes:
        prefix, _, number = node.name.rpartition("/")
        # A bounded length: int() of thousands of digits is refused (and slow).
        if prefix and number.isascii() and number.isdigit() and len(number) < 19:
            counts[prefix] = max(counts.get(prefix, 0), int(number) + 1)


def _check_document(doc: Any, where: str) -> None:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise LoadError(f"{where} is not an autodag graph file (its document's format is not "
                        f"{FORMAT!r})")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise LoadError(f"{where}: format version {version!r} is not a positive integer")
    if version > VERSION:
        raise LoadError(f"{where} has format version {version}, written by a newer autodag "
                        f"({doc.get('autodag')!r}); this one reads versions up to {VERSION}")
    _list(doc, "nodes", where)


def _node(rec: Any, i: int, nodes: list[Node], graph: Graph, archive: Archive,
          where: str) -> Node:
    if not isinstance(rec, dict):
        raise LoadError(f"{where}: node {i} is not a JSON object")
    name = rec.get("name")
    if not isinstance(name, str):
        raise LoadError(f"{where}: node {i} has no name string")
    at = f"{where}: node {i} ({name!r})"
    kind = rec.get("kind")
    if kind in ("variable", "constant"):
        value = decode(rec.get("value"), archive.array, f"{at}: value")
        cls = Variable if kind == "variable" else Constant
        try:
            node: Node = cls(value, name=name, graph=graph)
        except AutodagError as exc:
            raise LoadError(f"{at}: {exc}") from None
    elif kind == "placeholder":
        node = _placeholder(rec, name, graph, at)
    elif kind == "operator":
        node = _operator(rec, name, nodes, graph, archive, at)
    else:
        raise LoadError(f"{at}: unknown node kind {kind!r} (known: {sorted(_KINDS.values())})")
    node.site = _site(rec.get("site"), at)
    return node


def _placeholder(rec: dict[str, Any], name: str, graph: Graph, at: str) -> Placeholder:
    dtype = dtype_named(rec.get("dtype"), f"{at}: dtype")
    shape = rec.get("shape")
    if shape is not None and not (isinstance(shape, list) and all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 0)
            for d in shape)):
        raise LoadError(f"{at}: shape must be null or a list of sizes (non-negative integers "
                        f"or null), got {shape!r:.60}")
    exact = rec.get("exact")
    if not isinstance(exact, bool):
        raise LoadError(f"{at}: 'exact' must be true or false")
    node = Placeholder(name, dtype=dtype, shape=shape, graph=graph)
    node._exact = exact
    return node


def _operator(rec: dict[str, Any], name: str, nodes: list[Node], graph: Graph,
              archive: Archive, at: str) -> Operator:
    op_name = rec.get("op")
    plugin = rec.get("plugin")
    if not isinstance(op_name, str) or not isinstance(plugin, dict):
        raise LoadError(f"{at}: an operator needs an op name and a plugin object")
    provider = tuple(plugin.get(k) for k in ("name", "distribution", "version"))
    if not all(p is None or isinstance(p, str) for p in provider):
        raise LoadError(f"{at}: the plugin's name, distribution and version must be strings")
    try:
        registered = restore_op(op_name, provider, f"node {name!r} of {at.split(': ')[0]}")
    except OpNotFoundError as exc:
        raise LoadError(str(exc)) from None
    op = registered.opdef
    inputs = tuple(nodes[_ref(k, len(nodes), f"{at}: inputs")] for k in _list(rec, "inputs", at))
    if op.arity is not None and len(inputs) != op.arity:
        raise LoadError(f"{at}: op {op_name!r} takes {op.arity} input(s), the file gives "
                        f"{len(inputs)}")
    raw = rec.get("attrs")
    if not isinstance(raw, dict):
        raise LoadError(f"{at}: 'attrs' must be a JSON object")
    unknown = sorted(set(raw) - set(op.attributes))
    if unknown:
        raise LoadError(f"{at}: op {op_name!r} has no attribute(s) {unknown} (its attributes: "
                        f"{list(op.attributes)})")
    attrs = {k: decode(raw[k], archive.array, f"{at}: attribute {k!r}") if k in raw else d
             for k, d in op.attributes.items()}
    missing = [k for k, v in attrs.items() if v is REQUIRED]
    if missing:
        raise LoadError(f"{at}: op {op_name!r} needs attribute(s) {missing}")
    try:
        return Operator(registered, inputs, attrs, name, graph=graph)
    except AutodagError as exc:
        raise LoadError(f"{at}: {exc}") from None


def _ref(ref: Any, n: int, where: str) -> int:
    k = index(ref, where)
    if k >= n:
        raise LoadError(f"{where}: node reference {k} is not an earlier node (nodes are "
                        f"listed inputs first; {n} so far)")
    return k


def _list(rec: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = rec.get(key)
    if not isinstance(value, list):
        raise LoadError(f"{where}: {key!r} must be a list")
    return value


def _site(site: Any, at: str) -> tuple[str, int] | None:
    if site is None:
        return None
    if (isinstance(site, list) and len(site) == 2 and isinstance(site[0], str)
            and isinstance(site[1], int) and not isinstance(site[1], bool)):
        return site[0], site[1]
    raise LoadError(f"{at}: 'site' must be null or [file, line]")
