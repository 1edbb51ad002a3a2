"""Regressions found by trying the issues' promises as a user would."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autodag as ad

AUTODAG = Path(sys.executable).with_name("autodag")
COMMAND = [str(AUTODAG)] if AUTODAG.exists() else [sys.executable, "-m", "autodag"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", [ad.Variable, ad.Constant])
@pytest.mark.parametrize("bad", ["abc", np.array(["a"]), np.array([object()]), None])
def test_rejected_value_leaves_the_graph_unchanged(
    kind: Callable[[Any], ad.Node], bad: object
) -> None:
    with ad.Graph() as g:
        with pytest.raises(TypeError, match="numeric"):
            kind(bad)
        good = kind(1.0)
    prefix = "Var" if kind is ad.Variable else "Const"
    assert good.name == f"{prefix}/0"  # the failed node drew no name
    assert g.nodes == [good]


def test_op_call_with_a_bad_later_input_adds_no_constant() -> None:
    with ad.Graph() as g:
        x = ad.Variable(2.0, name="x")
        with pytest.raises(TypeError, match="input 1"):
            ad.ops.add(1.5, "oops")
        y = ad.ops.add(x, 1.0)
    assert [n.name for n in g.nodes] == ["x", "Const/0", "add/0"]
    assert ad.evaluate(y) == 3.0


def test_check_takes_a_distribution_name_too() -> None:
    if "exp" not in ad.get_registry():
        pytest.skip("autodag-math is not installed")
    res = run("check", "autodag-math")
    assert res.returncode == 0, res.stderr
    table = res.stdout.split("\n\n")[0].splitlines()[1:]
    assert ["exp", "math"] in [row.split()[:2] for row in table]
    assert {row.split()[1] for row in table} == {"math"}


def test_demo_with_an_unwritable_out_dir_is_one_line_and_exit_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    res = run("demo", "--no-train", "--out", str(blocker / "sub"))
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0
    assert "cannot write" in res.stderr


def test_grad_with_too_many_arguments_for_an_op_is_exit_2() -> None:
    res = run("grad", "power(x, y, x)", "x=1", "y=2")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert "power() takes 2 input(s), got 3 arguments" in res.stderr


def test_symbolic_gradients_hessian_and_jvp_keep_float32() -> None:
    x0 = np.array([0.5, 1.5, -2.0], dtype=np.float32)
    with ad.Graph():
        x = ad.Variable(x0, name="x")
        y = (x * x * x - 2.0 * x).sum()
        v = x * x * 3.0
    (d,) = ad.gradients(y, [x])
    d_val = ad.evaluate(d)
    h_val = ad.evaluate(ad.hessian(y, x))
    t_val = ad.jvp(v, [x], [np.ones(3)])
    for got in (d_val, h_val, t_val):
        assert got.dtype == np.float32
    # By hand: y' = 3x^2 - 2, y'' = diag(6x), d(3x^2)/dx . 1 = 6x.
    np.testing.assert_allclose(d_val, 3 * x0.astype(np.float64) ** 2 - 2, rtol=1e-6)
    np.testing.assert_allclose(h_val, np.diag(6 * x0.astype(np.float64)), rtol=1e-6)
    np.testing.assert_allclose(t_val, 6 * x0.astype(np.float64), rtol=1e-6)


def test_symbolic_gradients_of_float64_and_python_floats_are_unchanged() -> None:
    with ad.Graph():
        x = ad.Variable(2.0, name="x")
        a = ad.Variable(np.array([1.0, -3.0]), name="a")
        y = x**4 + (a * a).sum() * x
    dx, da = ad.evaluate(ad.gradients(y, [x, a]))
    # By hand: dy/dx = 4x^3 + sum(a^2) = 32 + 10, dy/da = 2 a x.
    assert dx == pytest.approx(42.0)
    np.testing.assert_allclose(da, [4.0, -12.0])
    assert np.asarray(da).dtype == np.float64


README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_sessions() -> list[tuple[list[str], list[str]]]:
    """(``autodag`` arguments, expected output lines) of every ``$ autodag`` in the README."""
    sessions: list[tuple[list[str], list[str]]] = []
    for block in README.read_text(encoding="utf-8").split("```sh\n")[1:]:
        for line in block.split("```")[0].splitlines():
            if line.startswith("$ autodag "):
                sessions.append((shlex.split(line[len("$ autodag "):]), []))
            elif sessions and line and not line.startswith(("$", "#")):
                sessions[-1][1].append(line)
    return sessions


@pytest.mark.parametrize(("args", "expected"), _readme_sessions())
def test_readme_command_line_examples_print_what_the_readme_shows(
    args: list[str], expected: list[str]
) -> None:
    if "exp" in " ".join(args) and "exp" not in ad.get_registry():
        pytest.skip("autodag-math is not installed")
    res = run(*args)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == expected


def test_the_readme_has_command_line_examples() -> None:
    assert len(_readme_sessions()) >= 2


def test_readme_python_examples_run_as_written(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    blocks = [b.split("```")[0] for b in text.split("```python\n")[1:]]
    # The self-contained examples (and the picture one, which continues from them); the
    # later blocks are fragments that refer to a loss and data of the reader's own.
    runnable = [b for b in blocks if "import autodag" in b]
    assert len(runnable) >= 4
    if shutil.which("dot") is None or importlib.util.find_spec("graphviz") is None:
        runnable = [b for b in runnable if "render(" not in b]
    script = tmp_path / "readme_examples.py"
    script.write_text("\n".join(runnable), encoding="utf-8")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert float(out[0]) == pytest.approx(3.058)
    assert "[32.0, 48.0, 48.0]" in out
    assert "[1. 1.]" in out
    assert any(line.startswith("digraph") for line in out)


def _run_env(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_load_plugins_takes_distribution_names_and_reports_misspelt_ones() -> None:
    if "exp" not in ad.get_registry() or "sum" not in ad.get_registry():
        pytest.skip("autodag-math and autodag-array are not installed")
    res = _run_env("plugins", "--json", AUTODAG_LOAD_PLUGINS="autodag-math")
    assert res.returncode == 0, res.stderr
    loaded = [p["name"] for p in json.loads(res.stdout)["plugins"]]
    assert loaded == ["builtin", "math"]
    assert res.stderr == ""
    res = _run_env("plugins", AUTODAG_LOAD_PLUGINS="mathh")
    assert res.returncode == 0
    assert "AUTODAG_LOAD_PLUGINS names 'mathh'" in res.stderr


def test_numpy_only_rules_with_a_non_differentiable_input_give_gradient_nodes() -> None:
    per_input = ad.OpDef(
        name="scale_np", arity=2, forward=lambda a, s: a * s, symbolic=False,
        backward=(lambda xp, g, out, a, s: np.asarray(g) * s, None),
    )
    joint = ad.OpDef(
        name="mul_np", arity=2, forward=lambda a, b: a * b, symbolic=False,
        backward=lambda xp, g, out, a, b: (np.asarray(g) * b, None),
    )

    class Plugin:
        @ad.hookimpl
        def autodag_register_ops(self) -> list[ad.OpDef]:
            return [per_input, joint]

    name = ad.register_plugin(Plugin(), name="numpy-only-acceptance")
    try:
        with ad.Graph():
            x = ad.Variable(np.array([1.0, 2.0]), name="x")
            k = ad.Variable(3.0, name="k")
            y = ad.ops.get("scale_np")(x, k) * 2.0 + ad.ops.get("mul_np")(x, k)
        dx, dk = ad.evaluate(ad.gradients(y, [x, k], grad_ys=np.ones(2)))
        # By hand: dy/dx = 2k + k = 9 per element; the rules declare k non-differentiable.
        np.testing.assert_allclose(dx, [9.0, 9.0])
        assert float(dk) == 0.0
    finally:
        ad.unregister_plugin(name)


def test_jupyter_repr_svg_of_node_and_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    with ad.Graph() as g:
        x = ad.Variable(1.5, name="x")
        z = x * x
    if shutil.which("dot") is not None and importlib.util.find_spec("graphviz") is not None:
        for obj in (z, g):
            svg = obj._repr_svg_()
            assert svg is not None
            root = ET.fromstring(svg)
            assert root.tag.endswith("svg")
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes the import fail
    assert z._repr_svg_() is None and g._repr_svg_() is None
    assert "image/svg+xml" not in z._repr_mimebundle_()


def test_jvp_tangent_errors_name_the_input() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones(3), name="x")
        y = x * x
    with pytest.raises(ValueError, match=r"tangent for 'x' has shape \(4,\), but 'x' has shape"):
        ad.jvp(y, [x], [np.ones(4)])
    with pytest.raises(TypeError, match=r"tangent for 'x'.*numeric"):
        ad.jvp(y, [x], ["a"])
    # By hand: d(x*x) . t = 2 x t.
    np.testing.assert_allclose(ad.jvp(y, [x], [[1.0, 2.0, 3.0]]), [2.0, 4.0, 6.0])


def test_placeholder_dtype_is_applied_to_feeds() -> None:
    with ad.Graph():
        p32 = ad.Placeholder(name="p32", dtype=np.float32)
        p_any = ad.Placeholder(name="p_any")
        pi = ad.Placeholder(name="pi", dtype=np.int64)
        z32 = p32 * 2.0
        z_any = p_any * 2.0
        zi = pi * 2
    assert ad.evaluate(z32, {p32: np.ones(3)}).dtype == np.float32
    assert ad.evaluate(z_any, {p_any: np.ones(3, dtype=np.float32)}).dtype == np.float32
    assert ad.evaluate(z_any, {p_any: np.ones(3, dtype=np.int64)}).dtype == np.float64
    with pytest.raises(TypeError, match=r"'pi'.*float64.*int64"):
        ad.evaluate(zi, {pi: np.ones(3)})
