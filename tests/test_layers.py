"""The engine's import direction: each module imports only from its own layer or below,
and no two modules import each other, lazy imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "autodag"

#: Layers, lowest first (CONTRIBUTING.md's layout section shows the same order).
LAYERS: list[set[str]] = [
    {"errors", "_arrays", "sites", "axes", "backend", "shapehook", "archive", "codec"},
    {"opdef", "hookspecs", "opsig", "rewrite", "kernelform"},
    {"builtin", "builtin_rules", "builtin_onnx", "builtin_rewrites", "builtin_kernels",
     "namespace"},
    {"plugins", "hooktables", "registry"},
    {"graph", "nodes", "overloading", "npcalls", "nodeargs", "valuecheck", "oprestore"},
    {"traversal", "shapes"},
    {"runtime", "interpreter", "feeds", "foreign", "debugnans", "rewriting"},
    {"compiler"},
    {"execute"},
    {"symbolic", "graph_namespace", "forward", "saving", "fusion", "fusion_build", "compiled"},
    {"viz", "optim", "testing", "opcheck", "ops", "expr", "expr_syntax", "expr_build",
     "values", "plugin_cli", "plugin_list", "charts", "demo", "demo_dask", "demo_model",
     "demo_checkpoint",
     "progress", "cli", "cli_args", "cli_grad", "cli_files", "cli_print", "budget", "opstubs",
     "__main__", "pytest_plugin", "checkrun",
     "__init__", "onnx"},
]
#: The one allowed upward import: a node's or graph's notebook display draws it with
#: ``viz``, lazily, when a notebook asks.
EXCEPTIONS = {("nodes", "viz"), ("graph", "viz")}


def _layer(module: str) -> int:
    top = module.split(".")[0]
    for k, names in enumerate(LAYERS):
        if top in names:
            return k
    raise AssertionError(f"module autodag.{module} is in no layer: add it to LAYERS")


def _modules() -> dict[str, Path]:
    out = {}
    for p in SRC.rglob("*.py"):
        rel = p.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(module: str, path: Path) -> set[str]:
    """autodag modules ``module`` imports anywhere (type-checking-only ones excepted)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for b in node.body for n in ast.walk(b))
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *(node.module or "").split(".")]).strip(".")
                if not node.module:
                    for a in node.names:
                        name = ".".join([*base, a.name]).strip(".")
                        # A name of the package itself (``from . import __version__``).
                        found.add(name if (SRC / Path(*name.split("."))).with_suffix(".py")
                                  .exists() or (SRC / Path(*name.split("."))).is_dir()
                                  else ".".join(base) or "__init__")
                    continue
            elif node.module and node.module.startswith("autodag."):
                target = node.module[len("autodag."):]
            else:
                continue
            found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name[len("autodag."):] for a in node.names
                         if a.name.startswith("autodag."))
    return {f for f in found if f and f != module}


MODULES = _modules()
GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_from_its_layer_or_below(module: str) -> None:
    mine = _layer(module)
    for target in sorted(GRAPH[module]):
        top, here = target.split(".")[0], module.split(".")[0]
        if (here, top) in EXCEPTIONS or top == here:
            continue
        assert _layer(target) <= mine, (
            f"autodag.{module} (layer {mine}) imports autodag.{target} "
            f"(layer {_layer(target)}): imports go downward only")


def test_no_import_circles() -> None:
    def resolve(target: str) -> str | None:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        return target or None

    edges = {m: {r for t in ts if (r := resolve(t)) and r != m
                 and (m.split(".")[0], r.split(".")[0]) not in EXCEPTIONS}
             for m, ts in GRAPH.items()}
    # A package's __init__ importing its own modules is not a circle of modules.
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(edges.get(m, ())):
            if t == "" or (t.startswith(m + ".")):
                continue
            if state.get(t) == 1:
                cycle = [*path[path.index(t):], t] if t in path else [m, t]
                raise AssertionError(f"import circle: {' -> '.join(cycle)}")
            if t not in state:
                visit(t, [*path, t])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])


def test_the_layer_table_checks_something() -> None:
    # The table's names are real modules, and an upward import would be caught.
    known = {m.split(".")[0] for m in MODULES}
    assert set().union(*LAYERS) <= known | {"__init__"}
    assert _layer("viz") > _layer("nodes") and ("interpreter", "compiler") not in EXCEPTIONS
