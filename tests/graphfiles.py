"""Graph files for the hostile-file tests: a real file written by ``autodag.save``, and
copies of it with the JSON document, the archive members or the ``.npy`` bytes edited."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autodag as ad

__all__ = ["base_file", "members", "node_record", "npy", "npy_with_header", "repack",
           "rewrite", "write_zip"]


def members(path: Path) -> dict[str, bytes]:
    """Every member of the archive ``path``, by name."""
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def write_zip(path: Path, content: dict[str, bytes],
              method: int = zipfile.ZIP_STORED) -> Path:
    """An archive of ``content`` at ``path``."""
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in content.items():
            zf.writestr(name, data)
    return path


def repack(src: Path, dst: Path, method: int) -> Path:
    """``src``'s members written again with compression ``method``."""
    return write_zip(dst, members(src), method)


def rewrite(src: Path, dst: Path, edit: Callable[[Any], Any] | None = None, *,
            text: bytes | None = None, replace: dict[str, bytes | None] | None = None) -> Path:
    """``src`` copied to ``dst`` with its document edited (``edit`` changes it in place or
    returns a replacement), or replaced by raw ``text``; ``replace`` adds, replaces or
    (None) drops archive members."""
    old = members(src)
    if text is None:
        doc = json.loads(old["autodag.json"])
        if edit is not None:
            new = edit(doc)
            doc = doc if new is None else new
        text = json.dumps(doc).encode()
    old["autodag.json"] = text
    for name, data in (replace or {}).items():
        if data is None:
            old.pop(name, None)
        else:
            old[name] = data
    return write_zip(dst, old)


def npy(arr: np.ndarray[Any, Any], allow_pickle: bool = False) -> bytes:
    """The bytes ``np.save`` writes for ``arr``."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def npy_with_header(header: bytes, data: bytes) -> bytes:
    """A .npy file with a hand-written header (version 1.0), padded as the format says."""
    body = header + b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body + data


def node_record(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """The document's record of the node called ``name``."""
    found: dict[str, Any] = next(n for n in doc["nodes"] if n["name"] == name)
    return found


def base_file(folder: Path) -> Path:
    """A real graph file to spoil: a placeholder, a Variable array (arrays/0.npy), and
    ops from the built-in and two first-party plugins, with and without attributes.
    Nodes in the file: data, w, matmul/0, t, r, s (positions 0 to 5)."""
    with ad.Graph():
        data = ad.Placeholder("data", shape=(None, 2))
        w = ad.Variable(np.array([[1.0, 2.0], [3.0, 4.0]]), name="w")
        t = ad.ops.tanh(data @ w, name="t")
        r = ad.ops.reshape(t, (-1,), name="r")
        s = ad.ops.sum(r, axis=0, name="s")
    path = folder / "base.adg"
    ad.save(path, s, metadata={"epoch": 1})
    # The file is good: what the spoilt copies are compared with.
    loaded = ad.load(path)
    assert [n.name for n in loaded.nodes] == ["data", "w", "matmul/0", "t", "r", "s"]
    feed = {loaded["data"]: np.array([[0.5, -0.25]])}
    want = np.tanh(np.array([[0.5, -0.25]]) @ w.value).sum()
    assert float(ad.evaluate(loaded.outputs, feed)) == pytest.approx(want, rel=1e-12)
    return path
