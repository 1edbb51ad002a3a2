"""The documentation site: its pages' code runs, it builds with ``mkdocs build --strict``,
and it renders in headless Chromium with a working search."""

from __future__ import annotations

import functools
import html
import http.server
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CHROMIUM = Path("/usr/bin/chromium")
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
#: Chromium's flags for a machine without a display or a network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
MAIN_PAGES = ["", "tutorial/", "guide/graphs/", "plugin-author/", "reference/api/",
              "reference/ops/", "benchmarks/"]


def _require(env: str, what: str) -> None:
    """Skip with the reason, unless ``env`` says this run must have ``what``."""
    if os.environ.get(env) == "1":
        pytest.fail(f"{what}, and {env}=1 requires it")
    pytest.skip(what)


def _pages_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_pages", DOCS / "_hooks" / "pages.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _doc_pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_hooks" not in p.parts)


def test_the_docs_pages_have_python_blocks() -> None:
    assert len(_BLOCK.findall((DOCS / "tutorial.md").read_text(encoding="utf-8"))) >= 5


@pytest.mark.parametrize("page", _doc_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_a_pages_python_blocks_run_in_order_in_a_fresh_python(page: Path,
                                                              tmp_path: Path) -> None:
    # A page's blocks build on each other (the tutorial's do): one interpreter per page.
    code = "\n".join(_BLOCK.findall(page.read_text(encoding="utf-8")))
    if not code:
        return
    env = {**os.environ, "PYTHONWARNINGS": "error", "MPLBACKEND": "Agg"}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{page.name} fails:\n{res.stderr[-3000:]}"


def test_every_readme_and_contributing_section_has_a_page_with_site_links() -> None:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    pages = _pages_module()
    made = pages.repository_pages()
    for name, layout in (("README.md", pages.README_PAGES),
                         ("CONTRIBUTING.md", pages.CONTRIBUTING_PAGES)):
        _, found = pages.sections((ROOT / name).read_text(encoding="utf-8"))
        placed = {s for _, names in layout.values() for s in names} | pages.README_ELSEWHERE
        assert set(found) <= placed, f"{name} sections without a page"
    # GitHub links became site links: README's own anchors point at the page holding
    # them, CONTRIBUTING.md at the plugin author's guide.
    api = made["guide/graphs.md"]
    assert "](../guide/performance.md#performance)" in api
    assert "(CONTRIBUTING.md)" not in api and "](../plugin-author.md" in api
    assert "BEGIN OP TABLES" not in made["guide/plugins.md"]


def test_link_fixing_names_files_the_site_does_not_hold() -> None:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    pages = _pages_module()
    text = pages._fix_links("guide/x.md", "see [the script](examples/a.py) and [web]"
                            "(https://numpy.org) and [up](#here)", {"here": "guide/y.md"})
    assert text == ("see the script (`examples/a.py` in the repository) and "
                    "[web](https://numpy.org) and [up](../guide/y.md#here)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built with ``mkdocs build --strict`` (warnings are errors)."""
    if shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None:
        _require("AUTODAG_REQUIRE_DOCS", "mkdocs is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    res = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "-q", "-d",
         str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert res.returncode == 0, f"mkdocs build --strict failed:\n{res.stderr[-4000:]}"
    return out


def test_the_site_builds_strictly_with_every_page(site: Path) -> None:
    for page in [*MAIN_PAGES, "guide/backends/", "guide/saving/", "contributing/"]:
        assert (site / page / "index.html").is_file(), page
    ops = _text(site / "reference" / "ops" / "index.html")
    # The op reference comes from the registry: every op, its plugin and signature.
    from autodag.registry import get_registry

    names = set(get_registry().ops)
    assert {"add", "logsumexp", "conv2d"} <= names
    html = (site / "reference" / "ops" / "index.html").read_text(encoding="utf-8")
    for name in names:
        assert f'id="{name}"' in html, name
    assert "autodag-math" in ops and "logsumexp(a, axis=None, keepdims=False)" in ops
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="autodag.grad"' in api and 'id="autodag.compile"' in api
    for picture in ("images/decision-regions.png", "images/curves.png", "benchmarks.png"):
        assert (site / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", picture


def _text(page: Path) -> str:
    """A built page's text, tags removed (highlighting splits code into spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site on a localhost port."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_site_renders_in_chromium_and_search_finds_an_op(served: str, site: Path) -> None:
    if not CHROMIUM.exists():
        _require("AUTODAG_REQUIRE_BROWSER", "Chromium is not installed (apt-get install "
                 "chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require("AUTODAG_REQUIRE_BROWSER", "playwright is not installed (pip install -e "
                 "'.[docs]')")
    shots = site / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            for path in MAIN_PAGES:
                page.goto(served + path, wait_until="networkidle")
                assert page.locator("article h1").count() >= 1, path
                name = (path.strip("/").replace("/", "-") or "index") + ".png"
                page.screenshot(path=str(shots / name))
            assert errors == [], errors
            page.goto(served, wait_until="networkidle")
            page.locator("label.md-search__icon, .md-search__input").first.click()
            # Typed key by key: the search reacts to key events, not to a filled value.
            page.locator(".md-search__input").press_sequentially("logsumexp", delay=20)
            hit = page.locator(".md-search-result__item "
                               "a[href*='reference/ops/'][href$='#logsumexp']")
            hit.first.wait_for(timeout=15_000)
            page.screenshot(path=str(shots / "search-logsumexp.png"))
            hit.first.click()
            page.wait_for_url("**/reference/ops/**#logsumexp")
            assert page.locator("h3#logsumexp").is_visible()
            assert errors == [], errors
        finally:
            browser.close()
    # The screenshots are under the build folder, and one of them is the tutorial's.
    assert (shots / "tutorial.png").stat().st_size > 10_000
