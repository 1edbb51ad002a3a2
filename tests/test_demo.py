"""The demo: data set, progress bar, PNG writer, training, and ``autodag demo`` itself."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest

import autodag as ad
from autodag import demo
from autodag._png import line_chart, write_png

needs_plugins = pytest.mark.skipif(
    bool(demo.missing_ops()),
    reason=f"plugins providing {sorted(demo.missing_ops())} are not installed",
)


def read_png(path: Path) -> np.ndarray:
    """Decode an 8-bit RGB, non-interlaced PNG: parsed from the PNG specification."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(tag + body), f"bad CRC in {tag!r}"
        if tag == b"IHDR":
            header = body
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    assert tag == b"IEND"
    w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, color, interlace) == (8, 2, 0)
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    assert not raw[:, 0].any()  # filter type 0 on every row
    return raw[:, 1:].reshape(h, w, 3)


def test_two_spirals_is_reproducible_and_balanced() -> None:
    x1, y1 = demo.two_spirals(50, np.random.default_rng(3))
    x2, y2 = demo.two_spirals(50, np.random.default_rng(3))
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert x1.shape == (100, 2) and y1.shape == (100,)
    assert (y1 == 0).sum() == (y1 == 1).sum() == 50
    # The second arm is the first one turned by 180 degrees (before noise).
    x, _ = demo.two_spirals(20, np.random.default_rng(0), noise=0.0)
    np.testing.assert_allclose(x[20:], -x[:20])
    assert np.linalg.norm(x, axis=1).max() <= 1.0


def test_png_round_trip(tmp_path: Path) -> None:
    img = np.zeros((3, 4, 3), np.uint8)
    img[0, 0] = (255, 0, 0)
    img[2, 3] = (1, 2, 3)
    np.testing.assert_array_equal(read_png(write_png(tmp_path / "a.png", img)), img)
    with pytest.raises(ValueError, match=r"shape \(3, 4\)"):
        write_png(tmp_path / "b.png", img[:, :, 0])


def test_line_chart_draws_curves_in_their_colours() -> None:
    img = line_chart([("loss", [1.0, 0.1, 0.01], (31, 119, 180)),
                      ("accuracy", [0.5, 0.9, 1.0], (230, 115, 0))], width=300, height=200)
    assert img.shape == (200, 300, 3)
    colours = {tuple(c) for c in img.reshape(-1, 3)}
    assert {(31, 119, 180), (230, 115, 0), (255, 255, 255), (0, 0, 0)} <= colours


def test_progress_bar_for_a_log_file() -> None:
    out = io.StringIO()
    bar = demo.ProgressBar(20, out, width=10)
    for step in range(1, 21):
        bar.update(step, 1.0 / step, step / 20)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in out.getvalue()
    assert lines[0] == "[#---------]  10% step  2/20 loss 0.5000 accuracy  10.0%"
    assert lines[-1] == "[##########] 100% step 20/20 loss 0.0500 accuracy 100.0%"


@needs_plugins
def test_training_reaches_95_percent() -> None:
    out = io.StringIO()
    result = demo.train_spirals(out, **demo.FULL)
    assert len(result.losses) == demo.FULL["steps"]
    assert result.accuracy >= 0.95
    assert result.losses[-1] < result.losses[0] / 10
    # Accuracy recomputed independently from the trained graph's final logits.
    _, labels = demo.two_spirals(demo.FULL["n_per_class"], np.random.default_rng(0))
    assert result.loss_node is not None
    logits = next(n for n in ad.topological_sort(result.loss_node) if n.name == "add/2")
    assert np.mean(np.argmax(logits.value, axis=1) == labels) >= 0.95
    assert "100% step 800/800" in out.getvalue()


@needs_plugins
def test_training_loss_matches_a_numpy_reference_at_the_start() -> None:
    # The first loss is the mean cross-entropy of the initial network, computed by hand.
    result = demo.train_spirals(io.StringIO(), steps=1, n_per_class=10, hidden=4)
    rng = np.random.default_rng(0)
    x, y = demo.two_spirals(10, rng)
    w1 = rng.normal(0.0, 3.0 / np.sqrt(2), (2, 4))
    w2 = rng.normal(0.0, 1.0 / np.sqrt(4), (4, 4))
    w3 = rng.normal(0.0, 1.0 / np.sqrt(4), (4, 2))
    z = np.tanh(np.tanh(x @ w1) @ w2) @ w3
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    expected = -logp[np.arange(20), y].mean()
    assert result.losses[0] == pytest.approx(expected, rel=1e-12)


def test_missing_plugin_ops_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(demo.NEEDED_OPS, "no_such_op", "autodag-nowhere")
    out = io.StringIO()
    assert demo.run_demo(tmp_path, out) == 1
    assert "no plugin provides no_such_op; install autodag-nowhere" in out.getvalue()
    assert "dz/dc computed = 2.96" in out.getvalue()


@needs_plugins
def test_autodag_demo_quick_writes_pictures_and_plot(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    script = Path(sys.executable).with_name("autodag")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "autodag"]
    res = subprocess.run(
        [*cmd, "demo", "--quick", "--epochs", "40", "--out", str(out_dir)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert "dz/dc computed = 2.96" in text and "Node ordering:" in text
    assert "] 100% step 40/40 loss " in text
    assert "training accuracy" in text
    assert f"wrote to {out_dir}/" in text
    png = read_png(out_dir / "loss.png")
    assert png.shape == (400, 640, 3)
    assert (out_dir / "seed-graph.dot").read_text().startswith("digraph")
    svg = out_dir / "mlp-graph.svg"
    if svg.exists():
        root = ET.parse(svg).getroot()
        texts = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
        assert "softmax_cross_entropy [nn]" in texts and "|grad|" in texts
        ET.parse(out_dir / "seed-graph.svg")
    else:
        assert "Graphviz not found" in text
        assert "|grad|" in (out_dir / "mlp-graph.dot").read_text()


@needs_plugins
def test_demo_without_graphviz_writes_dot_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "graphviz", None)  # as if autodag[viz] were missing
    out = io.StringIO()
    assert demo.run_demo(tmp_path, out, epochs=5, quick=True) == 0
    text = out.getvalue()
    notes = [line for line in text.splitlines() if "Graphviz not found" in line]
    assert len(notes) == 1 and "pip install 'autodag[viz]'" in notes[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "loss.png", "mlp-graph.dot", "seed-graph.dot",
    ]
    assert "|grad|" in (tmp_path / "mlp-graph.dot").read_text(encoding="utf-8")
