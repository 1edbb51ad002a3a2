"""Graph pictures: DOT text with no dependency, rendered files through Graphviz.

``to_dot`` needs nothing beyond autodag. ``render`` and the Jupyter pictures need the
optional ``graphviz`` Python package (``pip install 'autodag[viz]'``) and Graphviz's
``dot`` program; without them ``render`` says how to install what is missing, and the
Jupyter display falls back to text.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, TypeAlias

import numpy as np

from .backend import is_numpy
from .errors import ArgumentError, AutodagError
from .graph import Graph
from .nodes import Constant, Node, Operator, Placeholder, Variable
from .traversal import topological_sort

__all__ = [
    "FORMATS",
    "GraphvizMissingError",
    "RenderError",
    "dot_quote",
    "graphviz_available",
    "mimebundle",
    "render",
    "to_dot",
    "to_svg",
]

Drawable: TypeAlias = Node | Iterable[Node] | Graph
#: Gradients to colour a picture with: ``True`` reads each node's ``.gradient`` (set by
#: ``backward_pass``), a mapping gives them per node.
Highlight: TypeAlias = bool | Mapping[Node, Any]

#: File extensions ``render`` understands, and the Graphviz format of each.
FORMATS: Final = {".svg": "svg", ".png": "png", ".pdf": "pdf"}

_INSTALL_PY: Final = "pip install 'autodag[viz]' (or: pip install graphviz)"
_INSTALL_DOT: Final = (
    "install Graphviz: apt-get install graphviz (Debian/Ubuntu), brew install graphviz "
    "(macOS), or see https://graphviz.org/download/"
)
_KINDS: Final = {Variable: "Variable", Constant: "Constant", Placeholder: "Placeholder"}
# White to red: the colour scale of gradient magnitudes.
_HEAT: Final = ((255, 255, 255), (253, 219, 199), (244, 165, 130), (214, 96, 77), (178, 24, 43))


class RenderError(AutodagError, RuntimeError):
    """Graphviz's ``dot`` program failed to render a picture."""


class GraphvizMissingError(AutodagError, RuntimeError):
    """The ``graphviz`` Python package or the Graphviz ``dot`` program is not installed."""


def dot_quote(text: str) -> str:
    """``text`` as a DOT double-quoted string; nothing in it can escape the quotes.

    Backslashes and quotes are escaped, line breaks become ``\\n`` and other control
    characters (which Graphviz rejects) are written as ``\\uXXXX`` text. Other unicode
    stays as it is: DOT files are UTF-8.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\r":
            out.append("\\n")
            if text[i + 1 : i + 2] == "\n":
                i += 1
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 32 or ord(ch) == 127 or 0xD800 <= ord(ch) <= 0xDFFF:
            # Control characters and lone surrogates: shown as text, never emitted raw.
            out.append(f"\\\\u{ord(ch):04x}")
        else:
            out.append(ch)
        i += 1
    return '"' + "".join(out) + '"'


def _nodes_of(obj: Drawable) -> list[Node]:
    if isinstance(obj, Graph):
        seen = topological_sort(graph=obj)
        linked = set(seen)
        return seen + [n for n in obj.nodes if n not in linked]
    if isinstance(obj, Node):
        return topological_sort(obj)
    return topological_sort(list(obj))


def _value_text(node: Node) -> str:
    value = node.value
    if value is None:
        if isinstance(node, Placeholder):
            shape = "?" if node.declared_shape is None else str(node.declared_shape)
            return f"{shape.replace('None', '?')} {node.dtype.name}"
        return ""
    if not is_numpy(value):  # read off another library's array, never converted
        return f"{tuple(value.shape)} {str(value.dtype).rsplit('.', 1)[-1]}"
    return f"{np.shape(value)} {np.result_type(value).name}"


def _label(node: Node, magnitude: float | None) -> str:
    if isinstance(node, Operator):
        parts = [node.name, f"{node.op.name} [{node.plugin.name}]"]
    else:
        parts = [node.name, _KINDS.get(type(node), type(node).__name__)]
    shape = _value_text(node)
    if shape:
        parts.append(shape)
    if magnitude is not None:
        parts.append(f"|grad| {magnitude:.3g}")
    return "\n".join(parts)


def _magnitudes(nodes: list[Node], highlight: Highlight) -> dict[Node, float]:
    """Euclidean norm of each node's gradient (nodes without one are left out)."""
    if isinstance(highlight, bool):
        if not highlight:
            return {}
        given: Mapping[Node, Any] = {n: n.gradient for n in nodes}
    else:
        given = highlight
    out: dict[Node, float] = {}
    for node in nodes:
        g = given.get(node)
        if g is None or not is_numpy(g):
            continue  # another library's gradient (a lazy Dask one) is not computed here
        with np.errstate(over="ignore", invalid="ignore"):
            out[node] = float(np.linalg.norm(np.ravel(np.asarray(g, dtype=np.float64))))
    return out


def _heat(m: float, lo: float, hi: float) -> str:
    """Fill colour of magnitude ``m`` on a log scale from ``lo`` (white) to ``hi`` (red)."""
    if not math.isfinite(m):
        return "#7f00ff"  # violet: an infinite or nan gradient stands out
    if m <= 0 or hi <= 0:
        return "#ffffff"
    t = 1.0 if hi <= lo else (math.log(m) - math.log(lo)) / (math.log(hi) - math.log(lo))
    t = min(max(t, 0.0), 1.0) * (len(_HEAT) - 1)
    k = min(int(t), len(_HEAT) - 2)
    f = t - k
    rgb = [round(a + (b - a) * f) for a, b in zip(_HEAT[k], _HEAT[k + 1])]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def to_dot(
    obj: Drawable, *, title: str | None = None, highlight: Highlight = False
) -> str:
    """DOT text of a node and what it depends on, a list of nodes, or a whole graph.

    Data nodes are boxes, operators circles; edges run from input to op. Node identity,
    not name, is the DOT id, so nodes sharing a name stay apart. With ``highlight`` the
    nodes are filled white to red by the size of their gradient (log scale).
    """
    nodes = _nodes_of(obj)
    ids = {node: f"n{i}" for i, node in enumerate(nodes)}
    mags = _magnitudes(nodes, highlight)
    finite = [m for m in mags.values() if math.isfinite(m) and m > 0]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
    lines = [
        "digraph autodag {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    if title is not None:
        lines.append(f"  label={dot_quote(title)};")
    for node in nodes:
        shape = "circle" if isinstance(node, Operator) else "box"
        attrs = f"shape={shape}, label={dot_quote(_label(node, mags.get(node)))}"
        if node in mags:
            attrs += f', style=filled, fillcolor="{_heat(mags[node], lo, hi)}"'
        lines.append(f"  {ids[node]} [{attrs}];")
    for node in nodes:
        if isinstance(node, Operator):
            for k, inp in enumerate(node.inputs):
                if inp in ids:
                    lines.append(f"  {ids[inp]} -> {ids[node]} [label={dot_quote(str(k))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _graphviz() -> Any:
    """The ``graphviz`` module, or GraphvizMissingError saying how to install it."""
    try:
        # Imported by name: the package ships no type information.
        return importlib.import_module("graphviz")
    except ImportError:
        raise GraphvizMissingError(
            f"rendering needs the graphviz Python package: {_INSTALL_PY}"
        ) from None


def graphviz_available() -> bool:
    """Whether both the ``graphviz`` package and the ``dot`` program are installed."""
    try:
        _graphviz()
    except GraphvizMissingError:
        return False
    return shutil.which("dot") is not None


def _pipe(dot: str, fmt: str) -> bytes:
    gv = _graphviz()
    try:
        data: bytes = gv.Source(dot).pipe(format=fmt)
    except gv.ExecutableNotFound:
        raise GraphvizMissingError(
            f"rendering needs Graphviz's 'dot' program, which was not found on PATH: "
            f"{_INSTALL_DOT}"
        ) from None
    except gv.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise RenderError(
            f"Graphviz 'dot' failed to render {fmt}: {detail[-1] if detail else exc}"
        ) from None
    return data


def render(
    obj: Drawable,
    path: str | Path,
    *,
    title: str | None = None,
    highlight: Highlight = False,
) -> Path:
    """Write the picture of ``obj`` to ``path``, as SVG, PNG or PDF by its extension."""
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ArgumentError(
            f"cannot render {str(p)!r}: unknown extension {p.suffix!r}, "
            f"expected one of {', '.join(FORMATS)} (use to_dot for DOT text)"
        )
    data = _pipe(to_dot(obj, title=title, highlight=highlight), fmt)
    p.write_bytes(data)
    return p


def to_svg(obj: Drawable, *, title: str | None = None, highlight: Highlight = False) -> str:
    """The picture of ``obj`` as SVG text (needs Graphviz)."""
    return _pipe(to_dot(obj, title=title, highlight=highlight), "svg").decode("utf-8")


def mimebundle(obj: Node | Graph) -> dict[str, str]:
    """Jupyter display data: SVG plus text, or only text when Graphviz is missing."""
    bundle = {"text/plain": repr(obj)}
    # GraphvizMissingError is a RuntimeError, as is a failing 'dot': text is the fallback.
    with contextlib.suppress(RuntimeError):
        bundle["image/svg+xml"] = to_svg(obj, highlight=_has_gradients(obj))
    return bundle


def _has_gradients(obj: Node | Graph) -> bool:
    return any(n.gradient is not None for n in _nodes_of(obj))
