"""The ``autodag`` command, run as a real process: outputs, exit codes, JSON, refusals."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import autodag as ad
from autodag.cli import main
from autodag.expr import ExpressionError, parse

from .graphviz_marks import needs_graphviz


def _command() -> list[str]:
    """The installed console script next to this Python, else ``python -m autodag``."""
    script = Path(sys.executable).with_name("autodag")
    return [str(script)] if script.exists() else [sys.executable, "-m", "autodag"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_command(), *args], capture_output=True, text=True, cwd=cwd, timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


def has_ops(*names: str) -> bool:
    return all(n in ad.get_registry() for n in names)


def test_grad_of_the_seed_expression() -> None:
    res = run("grad", "(x*y + c)*c + x", "x=0.9", "y=0.4", "c=1.3")
    assert res.returncode == 0, res.stderr
    # By hand: value (0.9*0.4 + 1.3)*1.3 + 0.9; d/dx = c*y + 1, d/dy = x*c, d/dc = x*y + 2c.
    assert res.stdout.splitlines() == [
        "value = 3.058", "d/dx = 1.52", "d/dy = 1.17", "d/dc = 2.96",
    ]
    assert res.stderr == ""


def test_grad_json_schema_arrays_and_wrt() -> None:
    res = run("grad", "x*y + x", "x=[1,2,3]", "y=[[2],[4]]", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert set(doc) == {"version", "expression", "value", "shape", "dtype",
                        "differentiated", "wrt", "gradients"}
    assert doc["version"] == 1
    assert doc["expression"] == "x*y + x"
    assert doc["shape"] == [2, 3] and doc["dtype"] == "float64"
    assert doc["value"] == [[3.0, 6.0, 9.0], [5.0, 10.0, 15.0]]
    assert doc["differentiated"] == "sum(value)"
    assert doc["wrt"] == ["x", "y"]
    # d sum(x*y + x)/dx_j = sum_i y_i + 2 = 8; d/dy_i = sum_j x_j = 6.
    assert doc["gradients"] == {"x": [8.0, 8.0, 8.0], "y": [[6.0], [6.0]]}
    only = json.loads(run("grad", "x*y", "x=2", "y=5", "--wrt", "y", "--json").stdout)
    assert only["wrt"] == ["y"] and only["gradients"] == {"y": 2.0}
    assert only["differentiated"] == "value" and only["shape"] == []


def test_grad_non_finite_numbers_are_json_strings() -> None:
    res = run("grad", "x / y", "x=1", "y=0", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert doc["value"] == "inf"
    assert doc["gradients"] == {"x": "inf", "y": "-inf"}


@pytest.mark.skipif(not has_ops("exp", "sum"), reason="autodag-math/autodag-array not installed")
def test_grad_calls_plugin_ops() -> None:
    res = run("grad", "exp(x) * sum(y, axis=0)", "x=0.5", "y=[1,2,3]", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    e = math.exp(0.5)
    assert doc["value"] == pytest.approx(6 * e)
    assert doc["gradients"]["x"] == pytest.approx(6 * e)
    assert doc["gradients"]["y"] == pytest.approx([e, e, e])


@pytest.mark.skipif(not has_ops("getitem"), reason="autodag-array not installed")
def test_grad_subscripts_with_constant_indices() -> None:
    res = run("grad", "x[1] * x[-1] + x[0:2] @ x[:2]", "x=[1,2,3]", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    # x1*x2 + x0^2 + x1^2 = 6 + 1 + 4; gradient (2 x0, x2 + 2 x1, x1).
    assert doc["value"] == 11.0
    assert doc["gradients"]["x"] == [2.0, 7.0, 2.0]


def test_expression_starting_with_minus() -> None:
    res = run("grad", "-x*x", "x=3")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["value = -9", "d/dx = -6"]


CANARY = "autodag-canary"


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (f"__import__('os').system('touch {CANARY}')", "calling anything but an op"),
        ("__import__('os')", "unknown function '__import__'"),
        ("x.real", "attribute access at column 1"),
        ("(lambda: x)()", "calling anything but an op"),
        ("[x for x in y]", "comprehension"),
        (f"open('{CANARY}', 'w')", "unknown function 'open'"),
        ("x if y else x", "conditional expression"),
        ("x < y", "comparison"),
        ("x and y", "'and'/'or'"),
        ("{x: y}", "dict literal"),
        ("(z := x)", "assignment expression"),
        ("f'{x}'", "f-string"),
        ("'abc' * x", "str literal"),
        ("x // y", "operator FloorDiv"),
        ("~x", "operator Invert"),
        ("__builtins__", "name '__builtins__'"),
        ("multiply", "is an op: call it"),
        ("multiply(*x)", "starred argument"),
        ("x +", "syntax error"),
        ("x = 1", "syntax error"),
    ],
)
def test_rejected_expressions_in_process(
    expr: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["grad", expr, "x=1", "y=2"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("autodag grad: error: ") and err.count("\n") == 1
    assert message in err
    assert not (tmp_path / CANARY).exists()


def test_rejected_expression_in_a_real_process_never_runs(tmp_path: Path) -> None:
    for expr in (
        f"__import__('os').system('touch {CANARY}')",
        "().__class__.__base__.__subclasses__()",
        f"(lambda: __import__('os').system('touch {CANARY}'))()",
    ):
        res = run("grad", expr, "x=1", cwd=tmp_path)
        assert res.returncode == 2
        assert res.stdout == ""
        assert len(res.stderr.splitlines()) == 1 and "Traceback" not in res.stderr
        assert "is not allowed in an expression" in res.stderr
    assert not (tmp_path / CANARY).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x*y", "x=1"], "no value given for 'y'"),
        (["x", "x=1", "y=2"], "value given for 'y', which the expression does not use"),
        (["x", "x="], "expected NAME=VALUE, got 'x='"),
        (["x", "x"], "expected NAME=VALUE, got 'x'"),
        (["x", "x=abc"], "value of 'x' is not a number or an array of numbers"),
        (["x", "x=[[1],[1,2]]"], "not a rectangular array"),
        (["x", 'x=["a"]'], "'\"a\"' at character 2 is not a number"),
        (["x", "x=true"], "must be a number or an array of numbers"),
        (["x", "x=[true]"], "'true' at character 2 is not a number"),
        (["x", "x=[1,,2]"], "a value missing before ','"),
        (["x", "x=1", "x=2"], "'x' is given a value twice"),
        (["x", "1x=2"], "not a valid variable name"),
        (["x*y", "x=[1,2]", "y=[1,2,3]"], "shapes (2,) (3,)"),
        (["x @ y", "x=[[1,2]]", "y=[[1,2]]"], "op 'matmul' failed"),
        (["x", "x=1", "--wrt", "q"], "--wrt names 'q', which has no value"),
        (["", "x=1"], "expression is empty"),
        (["nosuchop(x)", "x=1"], "unknown function 'nosuchop'"),
        (["multiply(x)", "x=1"], "multiply() takes 2 input(s), got 1"),
        (["(" * 300 + "x" + ")" * 300, "x=1"], ""),
    ],
)
def test_malformed_input_gets_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["grad", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("autodag grad: error: "), err
    assert message in lines[0]


def test_malformed_input_in_a_real_process() -> None:
    for args, message in (
        (["x*y", "x=[1,2]", "y=[1,2,3]"], "shapes (2,) (3,)"),
        (["x", "x=[[1],[1,2]]"], "not a rectangular array"),
        (["(" * 300 + "x" + ")" * 300, "x=1"], "nested"),
    ):
        res = run("grad", *args)
        assert res.returncode == 2, res.stdout
        assert res.stdout == ""
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("autodag grad: error: "), res.stderr
        assert message in lines[0]


def test_dot_output(tmp_path: Path) -> None:
    dot = tmp_path / "g.dot"
    res = run("grad", "x*y", "x=2", "y=3", "--dot", str(dot))
    assert res.returncode == 0, res.stderr
    text = dot.read_text(encoding="utf-8")
    assert text.startswith("digraph autodag {")
    assert "multiply [builtin]" in text and "|grad| 3" in text


def test_unwritable_output_is_exit_1(tmp_path: Path) -> None:
    res = run("grad", "x", "x=1", "--dot", str(tmp_path / "missing" / "g.dot"))
    assert res.returncode == 1
    assert len(res.stderr.splitlines()) == 1 and "Traceback" not in res.stderr


@needs_graphviz
def test_render_svg(tmp_path: Path) -> None:
    svg = tmp_path / "g.svg"
    res = run("grad", "(x*y + c)*c + x", "x=0.9", "y=0.4", "c=1.3", "--render", str(svg))
    assert res.returncode == 0, res.stderr
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    texts = {t.text for t in root.iter() if t.tag.endswith("text")}
    assert {"x", "y", "c", "add/1"} <= texts


def test_help_everywhere_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["grad"], ["demo"]):
        with pytest.raises(SystemExit) as exc:
            main([*args, "--help"])
        assert exc.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: autodag {args[0]}")
    grad_help = run("grad", "--help").stdout
    assert '"gradients": {name: V}' in grad_help and "Exit codes" in grad_help
    top = run("--help")
    assert top.returncode == 0 and "grad" in top.stdout and "demo" in top.stdout
    res = run("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"autodag {ad.__version__}"
    bare = run()
    assert bare.returncode == 2 and "COMMAND" in bare.stdout
    bad = run("grad")
    assert bad.returncode == 2 and "EXPR" in bad.stderr and "Traceback" not in bad.stderr


def test_python_dash_m_is_the_same_command() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "autodag", "grad", "x*x", "x=3"],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0 and res.stdout.splitlines() == ["value = 9", "d/dx = 6"]


def test_parse_reports_names_and_ops_in_order() -> None:
    e = parse("multiply(b, a) + a * c")
    assert e.names == ("b", "a", "c")
    assert e.ops == ("multiply",)
    with pytest.raises(ExpressionError, match="longer than"):
        parse("x+" * 6000 + "x")
