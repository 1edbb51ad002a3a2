"""``autodag grad``'s output files (--dot, --render): checked before anything is
computed, written after, so that an unwritable path costs no computation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["OutputError", "check_outputs", "write_outputs"]


class OutputError(Exception):
    """An output file cannot be written: reported on one line, exit code 1."""


def _check_output(option: str, path: str) -> None:
    """Refuse an output file that cannot be written, before anything is computed."""
    p = Path(path)
    where = f"{option} {path!r}"
    if p.is_dir():
        raise OutputError(f"{where}: is a folder, not a file")
    folder = p.parent
    if not folder.is_dir():
        raise OutputError(f"{where}: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise OutputError(f"{where}: not writable")


def check_outputs(dot: str | None, render: str | None) -> None:
    """OutputError if the --dot or --render file cannot be written or rendered."""
    if dot is not None:
        _check_output("--dot", dot)
    if render is not None:
        from .viz import FORMATS, graphviz_available

        if Path(render).suffix.lower() not in FORMATS:
            raise OutputError(
                f"--render {render!r}: cannot render this format; the file name must "
                f"end in {', '.join(FORMATS)} (--dot FILE writes DOT text)"
            )
        _check_output("--render", render)
        if not graphviz_available():
            raise OutputError(
                "--render needs Graphviz: pip install 'autodag[viz]' and the dot program "
                "(apt-get install graphviz, brew install graphviz); --dot FILE writes DOT "
                "text without it"
            )


def write_outputs(out: Any, title: str, dot: str | None, render: str | None) -> None:
    """Write the graph of ``out`` to the --render and --dot files that were given."""
    from .viz import render as render_graph
    from .viz import to_dot

    # The picture first: it is what may still fail (Graphviz) after the checks.
    if render is not None:
        render_graph(out, render, title=title, highlight=True)
    if dot is not None:
        Path(dot).write_text(to_dot(out, title=title, highlight=True), encoding="utf-8")
