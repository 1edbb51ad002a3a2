"""autodag's pytest plugin (autodag.pytest_plugin), run on throwaway test files, and
``autodag check --order 2 --json``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import autodag as ad
from tests.test_plugins import make_dist
from tests.test_plugins_cli import run

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

# Two ops with samples (the cube's rule is right, 3 a^2), one without.
GOOD = """
import autodag

def _samples(rng):
    return [autodag.Sample((rng.standard_normal((2, 3)),)),
            autodag.Sample((rng.standard_normal(()),))]

@autodag.hookimpl
def autodag_register_ops():
    return [
        autodag.OpDef(name="tpcube", arity=1, forward=lambda a: a * a * a,
                      backward=(lambda xp, g, out, a: 3 * g * a * a,), samples=_samples),
        autodag.OpDef(name="tpsq", arity=1, forward=lambda a: a * a,
                      backward=(lambda xp, g, out, a: 2 * g * a,), input_names=("x",),
                      samples=lambda rng: [autodag.Sample((rng.standard_normal(3),))]),
        autodag.OpDef(name="tpnos", arity=1, forward=lambda a: a + 1,
                      backward=(lambda xp, g, out, a: g,)),
    ]
"""
# The derivative of a**2 is 2a, not 3a.
BAD = """
import autodag

@autodag.hookimpl
def autodag_register_ops():
    return [autodag.OpDef(name="tpbad", arity=1, forward=lambda a: a * a,
                          backward=(lambda xp, g, out, a: 3 * g * a,), input_names=("x",),
                          samples=lambda rng: [autodag.Sample((rng.standard_normal(3),))])]
"""


def _pytest(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest in this process; hypothesis' plugin would import hypothesis again each run."""
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest", *args)


@pytest.fixture
def dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """tplug-pyt (plugin ``pyt``) and tplug-pytbad (``pytbad``) installed on sys.path."""
    root = tmp_path / "site"
    make_dist(root, "tplug-pyt", "1.0", {"pyt": "tplug_pyt"}, {"tplug_pyt": GOOD})
    make_dist(root, "tplug-pytbad", "1.0", {"pytbad": "tplug_pytbad"},
              {"tplug_pytbad": BAD})
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(root))
    ad.reset_plugins()
    # Imported here, once: pytester's runs in this process drop what they import.
    ad.get_registry()
    yield root
    monkeypatch.undo()
    for mod in set(sys.modules) - before:
        if mod.startswith("tplug_"):
            del sys.modules[mod]
    ad.reset_plugins()


def test_the_marker_and_the_factory_isolate_and_restore(dists: Path,
                                                        pytester: pytest.Pytester) -> None:
    before = ad.get_registry()
    assert {"exp", "tpsq"} <= set(before.ops)  # what this suite sees
    pytester.makepyfile(test_iso="""
        import pytest
        import autodag as ad

        @pytest.mark.autodag_plugins("pyt")
        def test_marked(autodag_plugins):
            assert autodag_plugins is ad.get_registry()
            assert "tpsq" in autodag_plugins and "add" in autodag_plugins  # built-in
            assert "exp" not in autodag_plugins and "tpbad" not in autodag_plugins
            assert [p.name for p in autodag_plugins.plugins] == ["builtin", "pyt"]

        @pytest.mark.autodag_plugins()
        def test_builtin_only():
            assert "tpsq" not in ad.get_registry() and "exp" not in ad.get_registry()

        def test_factory(autodag_registry):
            assert "exp" in ad.get_registry()  # unmarked: the registry as it was
            reg = autodag_registry("autodag-math", "tplug-pytb*")
            assert "exp" in reg and "tpbad" in reg and "tpsq" not in reg
            assert ad.get_registry() is reg

        @pytest.mark.autodag_plugins("no-such-plugin")
        def test_misspelt():
            pass
    """)
    result = _pytest(pytester, "-rE")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines([
        "*@pytest.mark.autodag_plugins: no autodag plugin named 'no-such-plugin' loaded; "
        "installed: *"])
    # The registry of before, not a rebuilt one: plugins registered at run time survive.
    assert ad.get_registry() is before


def test_one_test_per_sample_of_each_op_and_they_pass(dists: Path,
                                                      pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ops="""
        import pytest

        pytestmark = pytest.mark.autodag_plugins("pyt")

        def test_op(autodag_op_check):
            res = autodag_op_check()
            assert "second order" in res.checks and "jvp" in res.checks
            assert "float32" in res.checks and "static shapes" in res.checks

        def test_first_order(autodag_op_check):
            assert "second order" not in autodag_op_check(order=1).checks
    """)
    result = _pytest(pytester, "-v", "-k", "not first_order")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines_random([
        "*test_op?tpcube?sample 0?? PASSED*", "*test_op?tpcube?sample 1?? PASSED*",
        "*test_op?tpsq?sample 0?? PASSED*", "*test_op?tpnos? SKIPPED*",
    ])
    result = _pytest(pytester, "-rs", "-k", "first_order")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(["*op 'tpnos' of plugin 'pyt' has no samples*"])


def test_a_wrong_backward_rule_fails_with_check_ops_report(
        dists: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad="""
        import pytest

        @pytest.mark.autodag_plugins("pyt", "pytbad", check=["pytbad"])
        def test_op(autodag_op_check):
            autodag_op_check()
    """)
    result = _pytest(pytester)
    result.assert_outcomes(failed=1)  # only pytbad's op: check= narrows the marker
    out = result.stdout.str()
    assert re.search(r"op 'tpbad' from plugin 'pytbad' \(tplug-pytbad 1\.0\), sample 0 "
                     r"\(input shapes \(3,\)\): gradient of input 0 \('x'\) is wrong at "
                     r"index \(\d,\): backward rule gave", out), out
    assert "failed check: gradients" in out and "passed before: static shapes" in out
    # The report alone: no traceback through the plugin, no exception printed twice.
    assert "pytest_plugin.py" not in out and "During handling" not in out


def test_the_option_adds_the_checks_without_a_test_file(dists: Path,
                                                        pytester: pytest.Pytester) -> None:
    result = _pytest(pytester, "-v", "--autodag-plugin=pyt",
                                "--autodag-plugin=tplug-pyt")  # one plugin, named twice
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines_random(["tpcube?sample 0? PASSED*", "tpcube?sample 1? PASSED*",
                                        "tpsq?sample 0? PASSED*", "tpnos SKIPPED*"])
    result = _pytest(pytester, "--autodag-plugin=pytbad")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*op 'tpbad' from plugin 'pytbad'*gradient of input 0*"])
    result = _pytest(pytester, "--autodag-plugin=nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--autodag-plugin: no autodag plugin named 'nope' loaded*"])


def test_op_check_without_a_named_plugin_is_a_collection_error(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_op(autodag_op_check):\n    pass\n")
    result = _pytest(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*uses autodag_op_check but names no plugin to check*"])


def test_a_suite_not_using_it_imports_no_autodag(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    code = textwrap.dedent("""
        import os, sys, pytest
        env = {k: v for k, v in os.environ.items() if k.startswith("AUTODAG_")}
        assert pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                            "test_plain.py"]) == 0
        assert "autodag" not in sys.modules, "pytest's start imported autodag"
        assert "autodag_pytest" in sys.modules, "the pytest plugin was not loaded"
        assert {k: v for k, v in os.environ.items() if k.startswith("AUTODAG_")} == env
    """)
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_check_json_to_second_order_says_fail_and_pass(dists: Path) -> None:
    # Only the two throwaway plugins load: the command starts faster.
    only = "tplug-pyt*"
    res = run("check", "pyt", "pytbad", "--order", "2", "--json", path=dists,
              AUTODAG_LOAD_PLUGINS=only)
    assert res.returncode == 1, res.stdout + res.stderr
    data = json.loads(res.stdout)
    assert (data["status"], data["order"]) == ("fail", 2)
    assert data["summary"] == {"passed": 2, "failed": 1, "skipped": 1}
    plugins = {p["name"]: p for p in data["plugins"]}
    assert (plugins["pyt"]["status"], plugins["pytbad"]["status"]) == ("pass", "fail")
    assert plugins["pyt"]["distribution"] == "tplug-pyt"
    ops = {o["op"]: o for p in data["plugins"] for o in p["ops"]}
    assert (ops["tpnos"]["status"], ops["tpnos"]["samples"]) == ("skipped", [])
    cube = ops["tpcube"]
    assert cube["status"] == "pass" and [s["index"] for s in cube["samples"]] == [0, 1]
    checks = {c["check"]: c for c in cube["samples"][0]["checks"]}
    assert {"gradients", "symbolic gradients", "jvp", "second order", "static shapes",
            "float32"} <= set(checks)
    assert all(c["status"] == "pass" for c in checks.values())
    assert 0 <= checks["second order"]["max_abs_error"] < 1e-6
    assert checks["static shapes"]["max_abs_error"] is None
    (bad,) = ops["tpbad"]["samples"]
    assert ops["tpbad"]["status"] == bad["status"] == "fail"
    assert "gradient of input 0 ('x') is wrong" in bad["error"] == ops["tpbad"]["reason"]
    assert bad["checks"][-1]["check"] == "gradients"
    assert bad["checks"][-1]["status"] == "fail"
    # 3a against 2a: off by |a| (times the random output weight): far beyond tolerance.
    assert bad["checks"][-1]["max_abs_error"] > 1e-3
    res = run("check", "pyt", "--order", "1", "--json", path=dists, AUTODAG_LOAD_PLUGINS=only)
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads(res.stdout)
    assert (data["status"], data["order"]) == ("pass", 1)
    names = {c["check"] for o in data["plugins"][0]["ops"] for s in o["samples"]
             for c in s["checks"]}
    assert "jvp" in names and "second order" not in names


def _block_after(text: str, marker: str) -> str:
    """The first Python block after the line naming ``marker``."""
    start = text.index(marker)
    m = re.compile(r"^```python\n(.*?)^```", re.S | re.M).search(text, start)
    assert m is not None, f"no Python block after {marker}"
    return m.group(1)


def test_contributings_hypot_test_file_runs_the_checks(tmp_path: Path) -> None:
    # The walkthrough's plugin and test file, as written there, in a tplug-* distribution.
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    site = tmp_path / "site"
    (site / "autodag_hypot").mkdir(parents=True)
    (site / "autodag_hypot" / "__init__.py").write_text(
        _block_after(text, "`src/autodag_hypot/__init__.py`"))
    (site / "autodag_hypot" / "plugin.py").write_text(
        _block_after(text, "`src/autodag_hypot/plugin.py`"))
    make_dist(site, "tplug-hypot", "0.1.0", {"hypot": "autodag_hypot.plugin"}, {})
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_hypot.py").write_text(_block_after(text, "`tests/test_hypot.py`"))
    # With autodag-math loaded too (its own hypot): the marker and the option isolate.
    env = {**os.environ, "PYTHONPATH": str(site), "AUTODAG_LOAD_PLUGINS": "*"}
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p",
                          "no:hypothesispytest", "-W", "error", "-v", "tests",
                          "--autodag-plugin=hypot"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    for k in range(3):
        assert f"tests/test_hypot.py::test_ops[hypot[sample {k}]] PASSED" in res.stdout
        assert f"\nhypot[sample {k}] PASSED" in res.stdout
    assert "7 passed" in res.stdout, res.stdout
