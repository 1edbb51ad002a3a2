"""The tutorial's worked example, with its printed values."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import autodag as ad
from autodag.cli import main
from autodag.demo import seed_example


def build() -> tuple[ad.Graph, ad.Variable, ad.Variable, ad.Constant, ad.Node]:
    with ad.Graph() as g:
        x = ad.Variable(0.9, name="x")
        y = ad.Variable(0.4, name="y")
        c = ad.Constant(1.3, name="c")
        z = (x * y + c) * c + x
    return g, x, y, c, z


def test_seed_ordering_value_and_gradients() -> None:
    _g, x, y, c, z = build()
    order = ad.topological_sort(z)
    assert [n.name for n in order] == ["x", "y", "mul/0", "c", "add/0", "mul/1", "add/1"]
    res = ad.forward_pass(order)
    assert res == pytest.approx((0.9 * 0.4 + 1.3) * 1.3 + 0.9)
    assert res == pytest.approx(3.058)
    grads = ad.backward_pass(order)
    assert x.gradient == pytest.approx(1.3 * 0.4 + 1)
    assert y.gradient == pytest.approx(0.9 * 1.3)
    assert c.gradient == pytest.approx(0.9 * 0.4 + 2 * 1.3)
    assert [float(v) for v in grads][-1] == 1.0


def test_seed_graph_collections_and_reprs() -> None:
    g, x, y, c, z = build()
    assert set(g.variables) == {x, y}
    assert set(g.constants) == {c}
    assert {n.name for n in g.operators} == {"mul/0", "add/0", "mul/1", "add/1"}
    assert repr(x) == "Variable: name:x, value:0.9"
    assert repr(c) == "Constant: name:c, value:1.3"
    assert repr(z) == "Operator: name:add/1"


def test_grad_matches_seed_and_stores_nothing() -> None:
    _, x, y, c, z = build()
    gx, gy, gc = ad.grad(z, [x, y, c])
    assert (float(gx), float(gy), float(gc)) == pytest.approx((1.52, 1.17, 2.96))
    assert x.gradient is None and z.value is None
    assert ad.evaluate(z) == pytest.approx(3.058)


def test_demo_prints_expectations_and_writes_dot(tmp_path: Path) -> None:
    out = io.StringIO()
    path = seed_example(tmp_path, out)
    text = out.getvalue()
    for expected in ("3.058", "1.52", "1.17", "2.96", "Operator: name:add/1"):
        assert expected in text
    dot = path.read_text()
    assert dot.startswith("digraph") and "multiply" in dot


def test_cli_demo_and_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-train", "--out", str(tmp_path)]) == 0
    assert "dz/dc computed = 2.96" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert ad.__version__ in capsys.readouterr().out


def test_rerun_gives_no_stale_or_doubled_gradients() -> None:
    _, x, y, _c, z = build()
    order = ad.topological_sort(z)
    for _ in range(3):
        ad.forward_pass(order)
        ad.backward_pass(order)
        assert float(x.gradient) == pytest.approx(1.52)
    x.value = 2.0
    ad.forward_pass(order)
    ad.backward_pass(order)
    assert float(y.gradient) == pytest.approx(2.0 * 1.3)
    assert np.isclose(float(z.value), (2.0 * 0.4 + 1.3) * 1.3 + 2.0)
