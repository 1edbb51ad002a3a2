"""The site's generated pages: README and CONTRIBUTING sections, the op reference, the
benchmark tables and their plot, and the demo's pictures.

Everything here is made at build time from the repository and the registry, so the
site cannot drift from them. A README or CONTRIBUTING section this module does not place
on a page fails the build, naming it: a new section is given a page on purpose.
"""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path
from typing import Any, Final

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT: Final = Path(__file__).resolve().parents[2]

#: Page -> (its title, the README sections it shows, in order).
README_PAGES: Final = {
    "guide/graphs.md": ("Graphs, feeds and gradients", ["Example", "API"]),
    "guide/errors.md": ("Numbers, errors and NaN debugging", ["Numbers and errors"]),
    "guide/higher-order.md": ("Higher order and forward mode", ["Higher-order derivatives"]),
    "guide/cli.md": ("Command line, pictures and optimizers",
                     ["Command line, pictures and optimizers"]),
    "guide/saving.md": ("Saving, loading and ONNX",
                        ["Saving, loading and checkpoints", "Export to ONNX"]),
    "guide/plugins.md": ("First-party plugins and NumPy functions", ["First-party plugins"]),
    "guide/backends.md": ("Backends: NumPy, GPU, Dask", ["Backends"]),
    "guide/performance.md": ("Compiling and performance", ["Performance"]),
}
#: README sections the home page and the tutorial cover instead.
README_ELSEWHERE: Final = {"Quick start", "Documentation"}
CONTRIBUTING_PAGES: Final = {
    "plugin-author.md": ("Writing an op plugin", ["How an op is defined", "Publish an op plugin"]),
    "contributing.md": ("Contributing to autodag", ["Set-up", "Layout"]),
}
OP_TABLES: Final = re.compile(r"<!-- BEGIN OP TABLES.*?END OP TABLES[^>]*-->", re.S)
LINK: Final = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def sections(text: str) -> tuple[str, dict[str, str]]:
    """A Markdown file's text before its first ``## `` heading, and each such section."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return parts[0], {parts[k].strip(): parts[k + 1] for k in range(1, len(parts), 2)}


def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc gives a heading (and GitHub, for these)."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[\s]+", "-", text)


def _anchors(pages: dict[str, str]) -> dict[str, str]:
    """Anchor -> the generated page whose text has that heading."""
    found: dict[str, str] = {}
    for page, text in pages.items():
        for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.M):
            found.setdefault(slug(heading), page)
    return found


def _relative(page: str, target: str) -> str:
    depth = page.count("/")
    return "../" * depth + target


def _fix_links(page: str, text: str, anchors: dict[str, str]) -> str:
    """Links written for GitHub (README's anchors, repository files) made site links."""

    def one(m: re.Match[str]) -> str:
        label, target = m.group(1), m.group(2)
        if re.match(r"[a-z]+:", target):
            return m.group(0)
        path, _, anchor = target.partition("#")
        if not path:
            where = anchors.get(anchor)
            if where is None or where == page:
                return m.group(0)
            return f"[{label}]({_relative(page, where)}#{anchor})"
        if path == "CONTRIBUTING.md":
            where = anchors.get(anchor, "plugin-author.md") if anchor else "plugin-author.md"
            return f"[{label}]({_relative(page, where)}{'#' + anchor if anchor else ''})"
        if path == "README.md":
            return f"[{label}]({_relative(page, 'index.md')})"
        if path == "benchmarks/RESULTS.md":
            return f"[{label}]({_relative(page, 'benchmarks.md')})"
        # Another file of the repository: named, not linked (the site does not hold it).
        return f"{label} (`{path}` in the repository)"

    return LINK.sub(one, text)


def _from(name: str, layout: dict[str, tuple[str, list[str]]], elsewhere: set[str],
          ) -> dict[str, str]:
    _, found = sections((ROOT / name).read_text(encoding="utf-8"))
    placed = {s for _, names in layout.values() for s in names} | elsewhere
    missing = [s for s in found if s not in placed]
    if missing:
        raise PluginError(f"{name} sections with no page on the site: {missing}; give "
                          "each a page in docs/_hooks/pages.py")
    pages = {}
    for page, (title, names) in layout.items():
        absent = [s for s in names if s not in found]
        if absent:
            raise PluginError(f"docs/_hooks/pages.py places {name} sections it no longer "
                              f"has: {absent}")
        body = "".join(f"## {s}\n{found[s]}" for s in names)
        pages[page] = f"# {title}\n\n" + OP_TABLES.sub(
            "Every op, with its signature and plugin, is in the [op reference]"
            "(../reference/ops.md).", body)
    return pages


def repository_pages() -> dict[str, str]:
    """The pages made from README's and CONTRIBUTING's sections, links made site links."""
    pages = _from("README.md", README_PAGES, set(README_ELSEWHERE))
    pages |= _from("CONTRIBUTING.md", CONTRIBUTING_PAGES, set())
    anchors = _anchors(pages)
    return {page: _fix_links(page, text, anchors) for page, text in pages.items()}


def ops_page() -> str:
    """The op reference: every op the registry holds, from the registry itself."""
    from autodag.opsig import signature_of
    from autodag.registry import get_registry

    ops = get_registry().ops
    by_plugin: dict[str, list[Any]] = {}
    for name in sorted(ops):
        reg = ops[name]
        by_plugin.setdefault(reg.plugin.distribution or reg.plugin.name, []).append(reg)
    lines = ["# Op reference", "",
             f"The {len(ops)} ops of autodag and its first-party plugins, generated from "
             "the registry when the site is built. Call an op as `autodag.ops.<name>(...)`; "
             "`autodag plugins` lists those of every installed plugin.", ""]
    for who in sorted(by_plugin, key=lambda w: (w != "builtin", w)):
        lines += [f"## {who}", ""]
        for reg in by_plugin[who]:
            op = reg.opdef
            grad = ("differentiable to any order" if op.differentiable and op.symbolic
                    else "differentiable to first order" if op.differentiable
                    else "not differentiable")
            call = f"{op.name}{signature_of(op)}".replace(", *, name=None", "")
            lines += [f"### {op.name}", "", "```python", call.replace("(*, name=None)", "()"),
                      "```", "",
                      f"{op.doc}", "",
                      f"Plugin: `{reg.plugin.describe()}`; {grad}; runs on "
                      f"{'any array backend' if op.array_api else 'NumPy'}.", ""]
    return "\n".join(lines)


def _ratio_rows(text: str) -> list[tuple[str, float]]:
    rows = []
    for m in re.finditer(r"^\| (W[^|]*?) \| ([^|]+?) \|[^|]*\|[^|]*\| ([\d.]+)x", text,
                         flags=re.M):
        rows.append((f"{m.group(1)} {m.group(2)}", float(m.group(3))))
    return rows


def benchmarks_page() -> tuple[str, bytes]:
    """The benchmark tables (benchmarks/RESULTS.md) and a plot of their ratios."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    text = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    rows = _ratio_rows(text)
    if not rows:
        raise PluginError("benchmarks/RESULTS.md has no ratio rows to plot")
    fig = Figure(figsize=(8.0, 0.4 * len(rows) + 1.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names = [r[0] for r in rows][::-1]
    ax.barh(names, [r[1] for r in rows][::-1], color="#1f77b4")
    ax.axvline(1.0, color="#e67300", linestyle="--", label="hand-written NumPy")
    ax.set_xscale("log")
    ax.set_xlabel("time relative to the hand-written baseline (log scale)")
    ax.legend(loc="lower right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    body = text.split("\n", 1)[1]
    page = ("# Benchmarks\n\nTimes of autodag against hand-written NumPy, from "
            "`benchmarks/RESULTS.md` (written by `make bench`).\n\n"
            "![Ratios to the hand-written baseline](benchmarks.png)\n" + body)
    return page, buf.getvalue()


def demo_pictures() -> dict[str, bytes]:
    """The pictures of a short demo training: loss curves and decision regions."""
    from autodag.charts import draw_curves, draw_decision_regions
    from autodag.demo import train_spirals

    result = train_spirals(io.StringIO(), steps=300, n_per_class=100)
    assert result.predict is not None and result.features is not None
    assert result.labels is not None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        draw_curves(out / "curves", result.losses, result.accuracies,
                    title="two spirals: MLP 2-32-32-2 trained with Adam")
        draw_decision_regions(out / "decision-regions", result.predict, result.features,
                              result.labels, title="two spirals: the trained MLP's "
                              "decision regions")
        return {f"images/{p.name}": p.read_bytes() for p in sorted(out.glob("*.png"))}


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated pages and pictures to the site's files."""
    made: dict[str, str | bytes] = dict(repository_pages())
    made["reference/ops.md"] = ops_page()
    made["benchmarks.md"], made["benchmarks.png"] = benchmarks_page()
    made |= demo_pictures()
    for uri, content in made.items():
        files.append(File.generated(config, uri, content=content))
    return files
