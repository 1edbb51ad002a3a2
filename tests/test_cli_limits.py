"""``autodag grad``'s limits and edge cases: the memory estimate, long and deep
expressions, options and values the parser used to misread, output files."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autodag as ad
import autodag.execute
from autodag import budget, expr
from autodag.budget import BudgetError, estimate, parse_size
from autodag.cli import MAX_BYTES_ENV, main
from autodag.expr import MAX_DEPTH, MAX_LENGTH, ExpressionError, parse, parse_value

from .test_cli import has_ops, run


@pytest.fixture(autouse=True)
def _no_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_BYTES_ENV, raising=False)


def grad(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["grad", *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("autodag grad: error: "), err
    return lines[0]


def arr(shape: tuple[int, ...]) -> str:
    """A JSON array of zeros of this shape, short enough for a command line."""
    return json.dumps(np.zeros(shape, dtype=int).tolist(), separators=(",", ":"))


# --- the memory estimate -------------------------------------------------------------


def test_terabytes_are_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the graph ran although its estimate is over the limit")

    monkeypatch.setattr(autodag.execute, "forward_pass", never)
    n = 240_000
    # 5.8e10 elements: 0.4 TiB for the product's value, as much for its gradient.
    code, out, err = grad("x*y", f"x={arr((n,))}", f"y={arr((n, 1))}", "--max-bytes", "100G",
                          capsys=capsys)
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert "at node 'mul/0' (multiply of shapes (240000,) and (240000, 1)" in line
    assert "-> about (240000, 240000)" in line and "over the limit of 100 GiB" in line
    assert "would need about 1.26 TiB" in line
    assert f"raise the limit with --max-bytes 2T (at least) or {MAX_BYTES_ENV}" in line


def test_the_issue_case_in_a_real_process() -> None:
    # (30000,) by (30000, 1): 7.2 GB for the product alone; it used to be killed (137).
    res = run("grad", "x*w", f"x={arr((30_000,))}", f"w={arr((30_000, 1))}")
    assert res.returncode == 2 and res.stdout == ""
    assert len(res.stderr.splitlines()) == 1 and "Traceback" not in res.stderr
    assert "(30000,) and (30000, 1)" in res.stderr and "over the limit of 1 GiB" in res.stderr


def test_the_limit_is_an_option_or_an_environment_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("sum(x*w)" if has_ops("sum") else "x*w", f"x={arr((100,))}", f"w={arr((100, 1))}")
    # 100 x 100 float64 is 78 KiB; value and gradient twice that.
    assert grad(*args, "--max-bytes", "1M", "--json", capsys=capsys)[0] == 0
    code, _, err = grad(*args, "--max-bytes", "64K", capsys=capsys)
    assert code == 2 and "over the limit of 64 KiB" in one_error_line(err)
    monkeypatch.setenv(MAX_BYTES_ENV, "64K")
    assert grad(*args, capsys=capsys)[0] == 2
    assert grad(*args, "--max-bytes", "0.5M", capsys=capsys)[0] == 0  # the option wins
    monkeypatch.setenv(MAX_BYTES_ENV, "lots")
    code, out, err = grad(*args, capsys=capsys)
    assert code == 2 and out == ""
    assert f"{MAX_BYTES_ENV}='lots': expected a size" in one_error_line(err)
    with pytest.raises(SystemExit) as exc:
        main(["grad", "x", "x=1", "--max-bytes", "2Q"])
    assert exc.value.code == 2
    assert "expected a size such as 2G" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "size"),
    [("1000", 1000), ("2G", 2 << 30), ("500M", 500 << 20), ("1.5GiB", 3 << 29),
     ("64kb", 64 << 10), (" 3T ", 3 << 40)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "G", "-1G", "0", "2Q", "1e9", "nan"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="expected a size"):
        parse_size(text)


def _graph(*values: Any) -> list[ad.Variable]:
    return [ad.Variable(v, name=f"v{k}") for k, v in enumerate(values)]


def test_estimate_allocates_no_input_and_one_output_at_a_time() -> None:
    # The leaves are zero-stride views of 40 MB each, as the estimate's dummies are. A
    # rule run on dummies makes its output (freed at once), never its inputs.
    n = 5_000_000
    big = np.broadcast_to(np.zeros(()), (n,))
    with ad.Graph():
        x, y = _graph(big, big)
        z = (x * y + x) * y
    order = ad.topological_sort(z)
    tracemalloc.start()
    try:
        est = estimate(order, 1 << 40)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * n + (1 << 20)
    # Five nodes of 40 MB, each with a gradient, plus one gradient for temporaries.
    assert est.total_bytes == 11 * 8 * n
    assert est.largest_bytes == 2 * 8 * n


def test_a_refused_node_is_not_even_run_on_dummies() -> None:
    big = np.broadcast_to(np.zeros(()), (10**6,))
    with ad.Graph():
        x, y = _graph(big, big.reshape(-1, 1))
        z = x * y  # 8 TB
    tracemalloc.start()
    try:
        with pytest.raises(BudgetError, match=r"\(1000000,\) and \(1000000, 1\)"):
            estimate(ad.topological_sort(z), 1 << 30)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_estimate_knows_matmul_and_sequences_before_running_them() -> None:
    # (10^6, 2) @ (2, 10^6) do not broadcast; the product is 8 TB, which the matmul rule
    # must see before a dummy run would try to allocate it.
    with ad.Graph():
        a, b = _graph(np.broadcast_to(np.zeros(()), (10**6, 2)),
                      np.broadcast_to(np.zeros(()), (2, 10**6)))
        c = a @ b
    with pytest.raises(BudgetError, match=r"matmul of shapes \(1000000, 2\) and "
                       r"\(2, 1000000\) -> about \(1000000, 1000000\)"):
        estimate(ad.topological_sort(c), 1 << 30)
    if not has_ops("concatenate"):
        return
    with ad.Graph():
        (x,) = _graph(np.broadcast_to(np.zeros(()), (10**7,)))
        # One input a thousand times: 80 GB, however small its broadcast.
        y = ad.ops.concatenate([x] * 1000)
    with pytest.raises(BudgetError, match="concatenate of shapes"):
        estimate(ad.topological_sort(y), 1 << 30)


@pytest.mark.skipif(not has_ops("broadcast_to"), reason="autodag-array not installed")
def test_an_attribute_that_makes_a_huge_shape_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = grad("broadcast_to(x, (1000000, 1000000))", "x=1", capsys=capsys)
    assert code == 2 and out == ""
    assert "(1000000, 1000000) float64" in one_error_line(err)


def test_an_op_that_fails_on_dummies_leaves_the_error_to_the_real_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = grad("x*y", "x=[1,2]", "y=[1,2,3]", capsys=capsys)
    assert code == 2 and "shapes (2,) (3,)" in one_error_line(err)


# --- values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("nan", np.nan), ("NaN", np.nan), ("NAN", np.nan), ("inf", np.inf), ("-inf", -np.inf),
     ("Infinity", np.inf), ("-INFINITY", -np.inf), ("+inf", np.inf), (".5", 0.5),
     ("5.", 5.0), ("+1", 1.0), ("1e400", np.inf), ("1" + "0" * 400, np.inf)],
)
def test_numbers_in_every_spelling(text: str, expected: float) -> None:
    np.testing.assert_array_equal(parse_value(text, "x"), expected)
    np.testing.assert_array_equal(parse_value(f"[{text}, {text}]", "x"), [expected] * 2)


def test_arrays() -> None:
    np.testing.assert_array_equal(parse_value("[[1, 2], [3, 4]]"), [[1, 2], [3, 4]])
    assert parse_value("[]").shape == (0,)
    assert parse_value("[[], []]").shape == (2, 0)
    assert parse_value(" [ [nan] , [ -Inf ] ] ").shape == (2, 1)
    row = [0.1234567890123456, -1.234567890123456e-5]
    long = "[" + ",".join([json.dumps(row)] * 25_000) + "]"  # past JSON's fast path
    assert len(long) > 1_000_000
    np.testing.assert_array_equal(parse_value(long), np.tile(row, (25_000, 1)))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[1], [1, 2]]", "lengths 1 and 2 side by side"),
        ("[[1, 2], [1]]", "lengths 2 and 1 side by side"),
        ("[1, [2]]", "an array where numbers were"),
        ("[[[]], 1]", "a number where arrays were"),
        ("[1, 2", "missing a closing ']'"),
        ("[1]]", "text after its array"),
        ("[1 2]", "needs a comma before '2'"),
        ("[1,]", "a value missing before ']'"),
        ("[null]", "'null' at character 2 is not a number"),
        ("[" * 40 + "]" * 40, "nested more than 32 levels deep"),
        ("[" * 5000 + "]" * 5000, "nested more than 32 levels deep"),
        ("{}", "must be a number or an array of numbers"),
        ("1_000", "is not a number or an array of numbers"),
    ],
)
def test_malformed_values(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_value(text, "x")


def test_nan_and_inf_values_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = grad("x*y", "x=[NaN,1,2]", "y=[INF,-inf,.5]", "--json", capsys=capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["value"] == ["nan", "-inf", 1.0]
    assert doc["gradients"] == {"x": ["inf", "-inf", 0.5], "y": ["nan", 1.0, 2.0]}
    code, out, _ = grad("x", "x=nan", capsys=capsys)
    assert code == 0 and out.splitlines() == ["value = nan", "d/dx = 1"]


def test_a_name_is_read_as_python_reads_it(capsys: pytest.CaptureFixture[str]) -> None:
    # Python reads the ligature "\ufb01" in source as "fi" (NFKC); so must NAME=VALUE.
    code, out, err = grad("\ufb01 * 2", "\ufb01=3", capsys=capsys)
    assert code == 0, err
    assert out.splitlines() == ["value = 6", "d/dfi = 2"]


def test_a_huge_integer_literal_is_inf_like_1e400(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = grad("1" + "0" * 400 + " * x", "x=1", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["value"] == "inf"


def test_overflowing_powers_finish(capsys: pytest.CaptureFixture[str]) -> None:
    # Literals are floats, never Python ints: 9 ** 9 ** 9 overflows instead of running
    # for ever.
    code, out, _ = grad("9 ** 9 ** 9 * x", "x=1", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["value"] == "inf"


# --- long and deep expressions -------------------------------------------------------


@pytest.mark.parametrize("op", ["+", "*", "-"])
def test_a_flat_chain_of_5000_terms_is_not_deep(
    op: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = op.join(["x"] * 5000)
    assert len(text) <= MAX_LENGTH
    code, out, err = grad(text, "x=1", "--json", capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["value"] == {"+": 5000.0, "*": 1.0, "-": -4998.0}[op]


def test_a_chain_builds_without_recursion() -> None:
    # Under the default recursion limit of 1000, a recursive builder fails on this.
    e = parse(" + ".join(["x - -x * x"] * 700))
    with ad.Graph():
        x = ad.Variable(2.0, name="x")
        out = expr.build(e, {"x": x})
    assert ad.evaluate(out) == pytest.approx(700 * (2.0 + 4.0))


@pytest.mark.skipif(not has_ops("getitem"), reason="autodag-array not installed")
def test_a_chain_of_subscripts_is_not_deep(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = grad("x" + "[0:1]" * 1500, "x=[3,4]", capsys=capsys)
    assert code == 0, err
    assert out.splitlines()[-1] == "d/dx = [1, 0]"


def test_nesting_counts_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    ok = "(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH
    assert grad(ok, "x=1", capsys=capsys)[0] == 0
    code, out, err = grad("(" + ok + ")", "x=1", capsys=capsys)
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert f"nested more than {MAX_DEPTH} levels deep at column {MAX_DEPTH + 1}" in line
    # Python's own parser stops at 200 levels: ours is reached first, with its message.
    code, _, err = grad("(" * 500 + "x" + ")" * 500, "x=1", capsys=capsys)
    assert code == 2 and f"more than {MAX_DEPTH} levels" in one_error_line(err)


def test_what_pythons_parser_cannot_take_is_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Thousands of unary minus signs nest in Python's parser, which gives up on them
    # (3.11: MemoryError); that is an exit 2 with a sentence, never a traceback.
    code, out, err = grad("-" * (MAX_LENGTH - 1) + "x", "x=1", capsys=capsys)
    if code == 0:  # a Python whose parser takes it
        assert out.splitlines()[0] == "value = -1"
    else:
        assert code == 2 and "too complex for Python's parser" in one_error_line(err)


def test_the_length_limit_says_how_long(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = grad("x+" * 6000 + "x", "x=1", capsys=capsys)
    assert code == 2
    assert f"12001 characters long, longer than the limit of {MAX_LENGTH}" in one_error_line(err)


# --- the command line ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "text", "value"),
    [
        (["-x", "x=2"], "-x", -2.0),
        (["-x*3", "x=2"], "-x*3", -6.0),
        (["-(x+1)", "x=2"], "-(x+1)", -3.0),
        (["--x", "x=2"], "--x", 2.0),  # not an option grad has
        (["--json", "-x", "x=2"], "-x", -2.0),
        (["--wrt", "x", "-x", "x=2"], "-x", -2.0),
        (["--wrt=x", "-x", "x=2"], "-x", -2.0),
        (["--w", "x", "-x", "x=2"], "-x", -2.0),  # an abbreviation of --wrt, and its value
        (["-x", "x=2", "--wrt", "x"], "-x", -2.0),
        (["--", "-x", "x=2"], "-x", -2.0),
        (["-h*x", "h=1", "x=2"], "-h*x", -2.0),  # only -h alone is the help option
    ],
)
def test_an_expression_may_start_with_minus(
    args: list[str], text: str, value: float, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = grad(*args, *([] if "--json" in args else ["--json"]), capsys=capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["expression"] == text and doc["value"] == value


def test_options_between_values(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = grad("x*y", "x=2", "--json", "y=3", "--wrt", "y", capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["gradients"] == {"y": 2.0}


def test_missing_expression_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["grad", "--json"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.endswith("the following arguments are required: EXPR\n")


def test_help_documents_the_language_and_the_limits(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["grad", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for needle in ("x[0]", "x[1:3]", "x[0, 1:]", "sum(x, axis=0)", "concatenate([x, y]",
                   "may start with '-'", "nan, inf and -inf", f"{MAX_LENGTH} characters",
                   f"nested at most {MAX_DEPTH} deep", "--max-bytes", MAX_BYTES_ENV,
                   f"default {budget.suggest_size(budget.DEFAULT_MAX_BYTES)}",
                   "1 a file could not be written or rendered"):
        assert needle in text, needle


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("multiply(x, 1, x1=2)", "multiply() got input 'x1' both by position and by keyword"),
        ("stack(x, x)", "stack() takes a list of inputs as its first argument"),
        ("sum(x, axis=x)", "the op attribute 'axis', which must be a constant"),
    ],
)
def test_calls_the_op_would_misread(
    expression: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if not has_ops(expression.partition("(")[0]):
        pytest.skip("op not installed")
    code, out, err = grad(expression, "x=[1,2]", capsys=capsys)
    assert code == 2 and out == ""
    assert message in one_error_line(err)


# --- output files: checked before anything is computed -------------------------------


@pytest.mark.parametrize(
    ("option", "name", "message"),
    [
        ("--render", "g.txt", "the file name must end in .svg, .png, .pdf"),
        ("--render", "g", "the file name must end in .svg, .png, .pdf"),
        ("--render", "missing/g.svg", "the folder 'missing' does not exist"),
        ("--dot", "missing/g.dot", "the folder 'missing' does not exist"),
        ("--dot", ".", "is a folder"),
    ],
)
def test_an_output_that_cannot_be_written_is_exit_1_before_any_output(
    option: str, name: str, message: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("computed although an output cannot be written")

    monkeypatch.setattr(autodag.execute, "forward_pass", never)
    code, out, err = grad("x*x", "x=3", option, name, capsys=capsys)
    assert code == 1 and out == ""
    assert message in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_a_render_failing_after_the_checks_prints_no_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import autodag.viz

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise autodag.viz.RenderError("Graphviz 'dot' failed to render svg: syntax error")

    monkeypatch.setattr(autodag.viz, "graphviz_available", lambda: True)
    monkeypatch.setattr(autodag.viz, "render", broken)
    code, out, err = grad("x*x", "x=3", "--render", str(tmp_path / "g.svg"), capsys=capsys)
    assert code == 1 and out == ""
    assert "failed to render svg" in one_error_line(err)


def test_without_graphviz_render_is_exit_1_before_any_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import autodag.viz

    monkeypatch.setattr(autodag.viz, "graphviz_available", lambda: False)
    code, out, err = grad("x*x", "x=3", "--render", str(tmp_path / "g.svg"), capsys=capsys)
    assert code == 1 and out == ""
    assert "--render needs Graphviz" in one_error_line(err)


def test_dot_and_values_after_a_good_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dot = tmp_path / "g.dot"
    code, out, _ = grad("x*x", "x=3", "--dot", str(dot), capsys=capsys)
    assert code == 0 and out.splitlines() == ["value = 9", "d/dx = 6"]
    assert dot.read_text(encoding="utf-8").startswith("digraph autodag {")


def test_refusals_are_one_line_in_a_real_process() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "autodag", "grad", "-x", "x=nan", "--dot", "/nonexistent/g.dot"],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 1 and res.stdout == ""
    assert len(res.stderr.splitlines()) == 1 and "does not exist" in res.stderr
