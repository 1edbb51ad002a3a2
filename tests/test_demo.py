"""The demo: data set, progress, curves and charts, training, and ``autodag demo`` itself."""

from __future__ import annotations

import csv
import importlib.util
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
from autodag import charts, demo

from .graphviz_marks import needs_graphviz

needs_plugins = pytest.mark.skipif(
    bool(demo.missing_ops()),
    reason=f"plugins providing {sorted(demo.missing_ops())} are not installed",
)
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
HAVE_TQDM = importlib.util.find_spec("tqdm") is not None
needs_matplotlib = pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib not installed")
needs_tqdm = pytest.mark.skipif(not HAVE_TQDM, reason="tqdm not installed")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHART_TEXTS = {charts.STEP_LABEL, charts.LOSS_LABEL, charts.ACCURACY_LABEL, "0%", "100%"}


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file, after checking its signature and header CRC."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    (length,) = struct.unpack(">I", data[8:12])
    assert data[12:16] == b"IHDR" and length == 13
    (crc,) = struct.unpack(">I", data[29:33])
    assert crc == zlib.crc32(data[12:29])
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def svg_texts(path: Path) -> list[str]:
    """The text of every <text> element of an SVG file (which must parse as SVG)."""
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    return [t.text or "" for t in root.iter() if t.tag.endswith("text")]


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


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


def test_progress_lines_are_whole_lines() -> None:
    out = io.StringIO()
    bar = demo.ProgressLines(20, out)
    for step in range(1, 21):
        bar.update(step, 1.0 / step, step / 20)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in out.getvalue()
    assert lines[0] == "step  2/20 ( 10%) loss 0.5000 accuracy  10.0%"
    assert lines[-1] == "step 20/20 (100%) loss 0.0500 accuracy 100.0%"


def test_progress_lines_without_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes the import fail
    assert isinstance(demo.make_progress(5, io.StringIO()), demo.ProgressLines)
    assert not demo.available_tools().tqdm


@needs_tqdm
def test_tqdm_progress_shows_loss_and_accuracy() -> None:
    out = io.StringIO()
    bar = demo.make_progress(4, out)
    assert not isinstance(bar, demo.ProgressLines)
    for step in range(1, 5):
        bar.update(step, 0.25 * step, step / 4)
    bar.close()
    final = out.getvalue().split("\r")[-1]
    assert " 4/4 " in final and "100%" in final
    assert "loss 1.0000 accuracy 100.0%" in final and final.endswith("\n")
    assert isinstance(demo.make_progress(4, io.StringIO(), use_tqdm=False), demo.ProgressLines)


def test_curves_csv_has_one_row_per_step_in_percent(tmp_path: Path) -> None:
    path = charts.write_curves_csv(tmp_path / "c.csv", [0.75, 0.5, 0.125], [0.5, 0.875, 1.0])
    assert read_csv(path) == [
        ["step", "loss", "accuracy_percent"],
        ["1", "0.75", "50.00"],
        ["2", "0.5", "87.50"],
        ["3", "0.125", "100.00"],
    ]
    with pytest.raises(ValueError, match="2 losses and 1 accuracies"):
        charts.write_curves_csv(tmp_path / "d.csv", [1.0, 0.5], [0.5])


@needs_matplotlib
def test_charts_have_axes_ticks_and_legend(tmp_path: Path) -> None:
    import matplotlib

    def svg_settings() -> tuple[object, object]:
        return matplotlib.rcParams["svg.fonttype"], matplotlib.rcParams["svg.hashsalt"]

    before = svg_settings()
    losses = [0.7 * 0.9**k for k in range(30)]
    accuracies = [min(1.0, 0.5 + k / 40) for k in range(30)]
    written = charts.draw_curves(tmp_path / "c", losses, accuracies, title="the title")
    assert written == [tmp_path / "c.png", tmp_path / "c.svg"]
    assert png_size(tmp_path / "c.png") == (800, 450)
    texts = svg_texts(tmp_path / "c.svg")
    assert CHART_TEXTS | {"the title"} <= set(texts)
    # Each curve's label twice: on its axis and in the legend.
    assert texts.count(charts.LOSS_LABEL) == texts.count(charts.ACCURACY_LABEL) == 2
    assert svg_settings() == before  # the chart's settings did not leak
    # The same curves give the same files, byte for byte.
    again = charts.draw_curves(tmp_path / "d", losses, accuracies, title="the title")
    assert again is not None
    for a, b in zip(written, again):
        assert a.read_bytes() == b.read_bytes()


def test_decision_regions_show_the_class_predict_gives_each_side(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the viz extra is not installed")
    from matplotlib.image import imread

    rng = np.random.default_rng(0)
    points = rng.uniform(-1.0, 1.0, (60, 2))
    labels = (points[:, 0] > 0).astype(np.int64)
    calls: list[tuple[int, ...]] = []

    def predict(pts: np.ndarray) -> np.ndarray:
        calls.append(pts.shape)
        return (pts[:, 0] > 0).astype(np.int64)

    written = charts.draw_decision_regions(tmp_path / "r", predict, points, labels,
                                           title="the regions")
    assert written == [tmp_path / "r.png", tmp_path / "r.svg"]
    assert calls == [(200 * 200, 2)]
    assert png_size(tmp_path / "r.png") == (600, 600)
    assert "the regions" in svg_texts(tmp_path / "r.svg")
    # Class 0 is drawn in the blue of the curves, class 1 in their orange: a pixel of
    # the plot's left part is bluer than red, of its right part redder than blue.
    img = imread(tmp_path / "r.png")
    left, right = img[300, 150, :3], img[300, 500, :3]
    assert left[2] > left[0] and right[0] > right[2]
    with pytest.raises(ValueError, match=r"\(n, 2\) points"):
        charts.draw_decision_regions(tmp_path / "x", predict, points[:, :1], labels, title="")


def test_charts_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert not charts.matplotlib_available()
    assert charts.draw_curves(tmp_path / "c", [1.0], [0.5], title="t") is None
    assert charts.draw_decision_regions(tmp_path / "r", lambda p: p[:, 0], np.zeros((2, 2)),
                                        np.zeros(2), title="t") is None
    assert list(tmp_path.iterdir()) == []


def test_importing_autodag_imports_no_plotting_or_progress_library(tmp_path: Path) -> None:
    code = (
        "import sys, autodag, autodag.demo, autodag.charts, autodag.cli\n"
        "print(sorted(m for m in ('matplotlib', 'tqdm', 'graphviz') if m in sys.modules))\n"
        "if autodag.charts.matplotlib_available():\n"
        f"    autodag.charts.draw_curves(__import__('pathlib').Path({str(tmp_path)!r}) / 'c',"
        " [1.0, 0.5], [0.5, 1.0], title='t')\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert res.stdout.splitlines() == ["[]", "False"]


@needs_plugins
def test_training_reaches_95_percent() -> None:
    out = io.StringIO()
    result = demo.train_spirals(out, steps=demo.FULL["steps"],
                                n_per_class=demo.FULL["n_per_class"],
                                progress=demo.ProgressLines(800, out))
    assert len(result.losses) == len(result.accuracies) == demo.FULL["steps"]
    assert result.accuracy >= 0.95
    assert result.losses[-1] < result.losses[0] / 10
    # Accuracy recomputed independently from the trained graph's final logits.
    _, labels = demo.two_spirals(demo.FULL["n_per_class"], np.random.default_rng(0))
    assert result.loss_node is not None
    logits = next(n for n in ad.topological_sort(result.loss_node) if n.name == "add/2")
    assert np.mean(np.argmax(logits.value, axis=1) == labels) >= 0.95
    assert out.getvalue().splitlines()[-1].startswith("step 800/800 (100%) loss ")


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


NOTE_PACKAGE = (
    "note: graph pictures are DOT text only (no SVG): the graphviz Python package is not "
    "installed; pip install 'autodag[viz]'"
)
NOTE_DOT = (
    "note: graph pictures are DOT text only (no SVG): Graphviz's 'dot' program is not on "
    "PATH; install Graphviz with the system package manager (e.g. apt-get install graphviz, "
    "brew install graphviz; see https://graphviz.org/download/)"
)
NOTE_MATPLOTLIB = (
    "note: the curves are in curves.csv only (no charts): matplotlib is not installed; "
    "pip install 'autodag[viz]'"
)
NOTE_TQDM = (
    "note: progress shown as plain lines: tqdm is not installed; pip install 'autodag[viz]'"
)


def _without(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, graphviz: str, python: str
) -> None:
    """Make the named pieces missing: a failing import, or a PATH with no ``dot``."""
    if graphviz in ("no-package", "neither"):
        monkeypatch.setitem(sys.modules, "graphviz", None)
    if graphviz in ("no-dot", "neither"):
        empty = tmp_path / "empty-bin"
        empty.mkdir()
        monkeypatch.setenv("PATH", str(empty))
    if python in ("no-matplotlib", "neither"):
        monkeypatch.setitem(sys.modules, "matplotlib", None)
    if python in ("no-tqdm", "neither"):
        monkeypatch.setitem(sys.modules, "tqdm", None)


# Without the package, removing `dot` from PATH would make both pieces missing.
needs_graphviz_package = pytest.mark.skipif(
    importlib.util.find_spec("graphviz") is None, reason="graphviz package not installed")
GRAPHVIZ_CASES = [
    pytest.param("present", marks=needs_graphviz),
    "no-package",
    pytest.param("no-dot", marks=needs_graphviz_package),
    "neither",
]
PYTHON_CASES = [
    pytest.param("present", marks=[needs_matplotlib, needs_tqdm]),
    pytest.param("no-matplotlib", marks=needs_tqdm),
    pytest.param("no-tqdm", marks=needs_matplotlib),
    "neither",
]


@needs_plugins
@pytest.mark.parametrize("python", PYTHON_CASES)
@pytest.mark.parametrize("graphviz", GRAPHVIZ_CASES)
def test_demo_writes_the_documented_files_and_names_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graphviz: str, python: str
) -> None:
    _without(monkeypatch, tmp_path, graphviz, python)
    out_dir = tmp_path / "out"
    out = io.StringIO()
    assert demo.run_demo(out_dir, out, epochs=3, quick=True, checkpoint=False) == 0
    text = out.getvalue()

    expected = ["seed-graph.dot"]
    notes = []
    if graphviz == "present":
        expected.append("seed-graph.svg")
    expected.append("mlp-graph.dot")
    if graphviz == "present":
        expected.append("mlp-graph.svg")
    expected.append("curves.csv")
    if python in ("present", "no-tqdm"):
        expected += ["curves.png", "curves.svg", "decision-regions.png",
                     "decision-regions.svg"]
    if graphviz in ("no-package", "neither"):
        notes.append(NOTE_PACKAGE)
    if graphviz in ("no-dot", "neither"):
        notes.append(NOTE_DOT)
    if python in ("no-matplotlib", "neither"):
        notes.append(NOTE_MATPLOTLIB)
    if python in ("no-tqdm", "neither"):
        notes.append(NOTE_TQDM)

    assert sorted(p.name for p in out_dir.iterdir()) == sorted(expected)
    assert f"wrote to {out_dir}/: {', '.join(expected)}" in text.splitlines()
    assert [line for line in text.splitlines() if line.startswith("note:")] == notes

    assert (out_dir / "seed-graph.dot").read_text(encoding="utf-8").startswith("digraph")
    mlp_dot = (out_dir / "mlp-graph.dot").read_text(encoding="utf-8")
    assert mlp_dot.startswith("digraph") and "|grad|" in mlp_dot
    rows = read_csv(out_dir / "curves.csv")
    assert rows[0] == list(charts.CSV_HEADER)
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"]
    percents = [float(r[2]) for r in rows[1:]]
    assert all(0 <= p <= 100 for p in percents) and max(percents) > 1  # percent, not 0..1
    if graphviz == "present":
        texts = " ".join(svg_texts(out_dir / "mlp-graph.svg"))
        assert "softmax_cross_entropy [nn]" in texts and "|grad|" in texts
        assert "mul/0" in svg_texts(out_dir / "seed-graph.svg")
    if "curves.png" in expected:
        assert png_size(out_dir / "curves.png") == (800, 450)
        assert set(svg_texts(out_dir / "curves.svg")) >= CHART_TEXTS
        assert png_size(out_dir / "decision-regions.png") == (600, 600)
    if python in ("no-tqdm", "neither"):
        assert "step 3/3 (100%) loss " in text and "\r" not in text
    else:
        assert "| 3/3 [" in text  # tqdm's bar


@pytest.mark.parametrize(
    "graphviz", ["no-package", pytest.param("no-dot", marks=needs_graphviz_package)])
def test_demo_without_training_writes_the_seed_graph_and_names_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graphviz: str
) -> None:
    _without(monkeypatch, tmp_path, graphviz, "present")
    out_dir = tmp_path / "out"
    out = io.StringIO()
    assert demo.run_demo(out_dir, out, train=False) == 0
    assert [p.name for p in out_dir.iterdir()] == ["seed-graph.dot"]
    notes = [line for line in out.getvalue().splitlines() if line.startswith("note:")]
    assert notes == [NOTE_PACKAGE if graphviz == "no-package" else NOTE_DOT]


@needs_plugins
def test_a_failing_render_leaves_the_dot_files_and_one_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> Path:
        raise RuntimeError("Graphviz 'dot' failed to render svg: broken")

    monkeypatch.setattr(demo, "render", broken)
    monkeypatch.setattr(demo, "available_tools", lambda: demo.Tools(True, True, False, False))
    out = io.StringIO()
    assert demo.run_demo(tmp_path, out, epochs=2, quick=True, checkpoint=False) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "curves.csv", "mlp-graph.dot", "seed-graph.dot",
    ]
    notes = [line for line in out.getvalue().splitlines() if line.startswith("note:")]
    assert notes == [
        "note: graph pictures are DOT text only (no SVG): "
        "Graphviz 'dot' failed to render svg: broken",
        NOTE_MATPLOTLIB,
        NOTE_TQDM,
    ]


@needs_plugins
def test_autodag_demo_quick_command(tmp_path: Path) -> None:
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
    assert "40/40" in text and "training accuracy" in text
    assert ("checkpoint of step 20 (checkpoint.adg: graph, Adam state, data) resumed in a "
            "fresh process: steps 21-40 give the same losses, bit for bit") in text
    tools = demo.available_tools()  # the same environment as the command's
    expected = {"seed-graph.dot", "checkpoint.adg", "mlp-graph.dot", "curves.csv"}
    if tools.graphviz:
        expected |= {"seed-graph.svg", "mlp-graph.svg"}
    if tools.matplotlib:
        expected |= {"curves.png", "curves.svg", "decision-regions.png",
                     "decision-regions.svg"}
    assert {p.name for p in out_dir.iterdir()} == expected
    assert len(read_csv(out_dir / "curves.csv")) == 41
