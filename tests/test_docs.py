"""Every Python block of README.md and CONTRIBUTING.md runs as pasted into a fresh Python."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .graphviz_marks import needs_graphviz

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "CONTRIBUTING.md")
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        for m in _BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out.append((f"{doc}:{line}", m.group(1)))
    return out


def test_the_docs_have_python_blocks() -> None:
    assert len(_blocks()) >= 8


def _params() -> list[object]:
    # Blocks that render pictures need Graphviz's `dot` (CI requires it: no skipping there).
    return [pytest.param(w, c, id=w, marks=[needs_graphviz] if "render(" in c else [])
            for w, c in _blocks()]


@pytest.mark.parametrize(("where", "code"), _params())
def test_python_block_runs_as_pasted(where: str, code: str, tmp_path: Path) -> None:
    # A fresh interpreter in an empty folder: what a reader who pastes the block has.
    env = {**os.environ, "PYTHONWARNINGS": "error", "MPLBACKEND": "Agg"}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"{where} fails:\n{res.stderr[-3000:]}"
