"""Graph pictures: DOT structure, escaping, highlight colours, rendering, Jupyter display."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import autodag as ad
from autodag import viz

from .graphviz_marks import needs_graphviz
from .test_seed import build as seed_graph

HOSTILE = [
    'a"; evil [label="pwned"]; x -> "',
    "back\\slash\\",
    "two\nlines\r\nthree\rfour",
    "}\ndigraph evil {",
    "tab\tnul\x00bell\x07",
    "unicode é ∂x 🙂 名前",
    "lone\ud800surrogate",
    "<b>html</b>",
    "\\N \\G \\L",
]


def dot_tokens(dot: str) -> tuple[list[str], str]:
    """The quoted strings of a DOT text (unescaped), and the text outside them.

    Written from the DOT grammar, independently of viz.dot_quote: a string runs from an
    unescaped quote to the next unescaped quote.
    """
    strings: list[str] = []
    outside: list[str] = []
    i = 0
    while i < len(dot):
        ch = dot[i]
        if ch != '"':
            outside.append(ch)
            i += 1
            continue
        j = i + 1
        buf: list[str] = []
        while dot[j] != '"':
            if dot[j] == "\n":
                raise AssertionError("raw newline inside a DOT string")
            if dot[j] == "\\":
                buf.append(dot[j : j + 2])
                j += 2
            else:
                buf.append(dot[j])
                j += 1
        strings.append("".join(buf))
        outside.append("STR")
        i = j + 1
    return strings, "".join(outside)


def node_attrs(dot: str) -> dict[str, dict[str, str]]:
    """Attributes of each node statement, keyed by the first line of its label."""
    out: dict[str, dict[str, str]] = {}
    for line in dot.splitlines():
        if not re.match(r"\s*n\d+ \[", line):
            continue
        strings, outside = dot_tokens(line)
        it = iter(strings)
        attrs = {
            k: (next(it) if v == "STR" else v)
            for k, v in re.findall(r"(\w+)=(STR|\w+)", outside)
        }
        out[attrs["label"].split("\\n")[0]] = attrs
    return out


def test_seed_graph_shapes_edges_and_labels() -> None:
    _, _x, _y, _c, z = seed_graph()
    dot = viz.to_dot(z)
    strings, outside = dot_tokens(dot)
    assert outside.count("shape=box") == 3
    assert outside.count("shape=circle") == 4
    # Four binary operators: eight input -> op edges.
    assert len(re.findall(r"n\d+ -> n\d+", outside)) == 8
    assert any(s.startswith("mul/0\\nmultiply [builtin]") for s in strings)
    assert any(s.startswith("x\\nVariable") for s in strings)
    assert not any("float64" in s for s in strings if s.startswith("mul/0"))
    ad.forward_pass(ad.topological_sort(z))
    strings, _ = dot_tokens(viz.to_dot(z))
    assert any(s == "mul/0\\nmultiply [builtin]\\n() float64" for s in strings)


def test_nodes_sharing_a_name_stay_apart() -> None:
    with ad.Graph():
        a = ad.Variable(np.ones((2, 3)), name="x")
        b = ad.Variable(np.ones((2, 3)), name="x")
        out = a * b
    _, outside = dot_tokens(viz.to_dot(out))
    ids = re.findall(r"(n\d+) \[shape=box", outside)
    assert len(ids) == 2 and len(set(ids)) == 2
    edges = re.findall(r"(n\d+) -> (n\d+)", outside)
    assert sorted(e[0] for e in edges) == sorted(ids)


def test_shape_dtype_and_placeholder_declaration_in_labels() -> None:
    with ad.Graph() as g:
        p = ad.Placeholder(name="p", dtype=np.float32, shape=(None, 3))
        w = ad.Variable(np.ones((3, 2), dtype=np.float32), name="w")
        out = p @ w
    strings, _ = dot_tokens(viz.to_dot(g))
    assert "p\\nPlaceholder\\n(?, 3) float32" in strings
    assert "w\\nVariable\\n(3, 2) float32" in strings
    ad.forward_pass(ad.topological_sort(out), {p: np.ones((4, 3), dtype=np.float32)})
    strings, _ = dot_tokens(viz.to_dot(g))
    assert "matmul/0\\nmatmul [builtin]\\n(4, 2) float32" in strings


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_cannot_inject_dot(name: str) -> None:
    with ad.Graph():
        x = ad.Variable(1.0, name=name)
        y = ad.Variable(2.0, name=name)
        z = ad.ops.multiply(x, y, name=name)
    dot = viz.to_dot(z, title=name)
    _, outside = dot_tokens(dot)
    # Outside the strings there is only the structure autodag wrote: 3 nodes, 2 edges.
    assert outside.count("[shape=") == 3
    assert len(re.findall(r"->", outside)) == 2
    assert "evil" not in outside and "digraph evil" not in outside
    assert outside.count("{") == 1 and outside.count("}") == 1
    # Nothing Graphviz rejects or mis-reads is emitted raw.
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", dot)
    dot.encode("utf-8")  # no lone surrogates


@needs_graphviz
def test_hostile_names_render_as_exactly_the_drawn_graph(tmp_path: Path) -> None:
    with ad.Graph() as g:
        nodes = [ad.Variable(1.0, name=n) for n in HOSTILE]
        total = nodes[0]
        for n in nodes[1:]:
            total = total + n
    dot = viz.to_dot(g, title=HOSTILE[0])
    res = subprocess.run(["dot", "-Tjson"], input=dot.encode("utf-8"), capture_output=True,
                         check=True)
    doc = json.loads(res.stdout)
    # Graphviz sees exactly our nodes and edges: names never became structure.
    assert len(doc["objects"]) == len(g.nodes) == 2 * len(HOSTILE) - 1
    assert len(doc["edges"]) == 2 * (len(HOSTILE) - 1)
    labels = [o["label"] for o in doc["objects"]]
    assert any("名前" in lab for lab in labels)
    assert total in g.nodes


def test_highlight_colours_by_gradient_magnitude() -> None:
    with ad.Graph():
        x = ad.Variable(np.array([3.0, 4.0]), name="x")
        y = ad.Variable(np.array([0.5, 0.0]), name="y")
        z = x * 2.0 + y * 0.01
    order = ad.topological_sort(z)
    ad.forward_pass(order)
    ad.backward_pass(order)
    # Norms: dz/dx = [2, 2] -> 2.83, dz/dy = [0.01, 0.01] -> 0.0141 (the smallest), and
    # dz/d(constant 2.0) = sum(x) = 7 (the largest); operators get |[1, 1]| = 1.41.
    attrs = node_attrs(viz.to_dot(z, highlight=True))
    assert attrs["Const/0"]["label"].endswith("|grad| 7")
    assert attrs["Const/0"]["fillcolor"] == "#b2182b"
    assert attrs["y"]["fillcolor"] == "#ffffff"
    # Darker (less green) for larger gradients.
    green = {k: int(a["fillcolor"][3:5], 16) for k, a in attrs.items()}
    assert green["Const/0"] < green["x"] < green["add/0"] < green["y"]
    assert attrs["x"]["label"] == "x\\nVariable\\n(2,) float64\\n|grad| 2.83"
    assert attrs["y"]["label"].endswith("|grad| 0.0141")
    plain = viz.to_dot(z)
    assert "fillcolor" not in plain
    only_y = viz.to_dot(z, highlight={y: np.array([1.0, 1.0])})
    assert only_y.count("fillcolor") == 1


def test_render_rejects_unknown_extension(tmp_path: Path) -> None:
    _, _x, _y, _c, z = seed_graph()
    with pytest.raises(ValueError, match=r"unknown extension '\.gif'"):
        viz.render(z, tmp_path / "g.gif")


def test_missing_python_package_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _x, _y, _c, z = seed_graph()
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes the import fail
    with pytest.raises(viz.GraphvizMissingError, match=r"pip install 'autodag\[viz\]'"):
        viz.render(z, tmp_path / "g.svg")
    assert not viz.graphviz_available()
    bundle = z._repr_mimebundle_()
    assert bundle == {"text/plain": "Operator: name:add/1"}


@pytest.mark.skipif(importlib.util.find_spec("graphviz") is None,
                    reason="the graphviz Python package is not installed")
def test_missing_dot_program_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _x, _y, _c, z = seed_graph()
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(viz.GraphvizMissingError, match="apt-get install graphviz"):
        viz.render(z, tmp_path / "g.svg")
    assert not (tmp_path / "g.svg").exists()


@needs_graphviz
def test_render_svg_png_pdf(tmp_path: Path) -> None:
    _, _x, _y, _c, z = seed_graph()
    svg = viz.render(z, tmp_path / "g.svg", title="z")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    texts = {t.text for t in root.iter() if t.tag.endswith("text")}
    assert {"x", "y", "c", "mul/0", "add/1"} <= texts
    png = viz.render(z, tmp_path / "g.PNG")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = viz.render(z, tmp_path / "g.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"


@needs_graphviz
def test_jupyter_display_of_node_and_graph() -> None:
    g, _x, _y, _c, z = seed_graph()
    for obj in (z, g):
        bundle = obj._repr_mimebundle_()
        assert bundle["text/plain"] == repr(obj)
        ET.fromstring(bundle["image/svg+xml"])
    order = ad.topological_sort(z)
    ad.forward_pass(order)
    ad.backward_pass(order)
    # After a backward pass the picture shows gradient magnitudes.
    assert "|grad| 1.52" in z._repr_mimebundle_()["image/svg+xml"]
