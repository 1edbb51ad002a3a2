"""``autodag plugins`` and ``autodag check``, run as the installed command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.isolation import meant
from tests.test_plugins import CUBE, make_dist

AUTODAG = str(Path(sys.executable).with_name("autodag"))

WRONG_GRADIENT = """
import autodag

@autodag.hookimpl
def autodag_register_ops():
    return [autodag.OpDef(
        name="badsquare", arity=1, forward=lambda a: a * a,
        backward=(lambda xp, g, out, a: 3 * g * a,),
        samples=lambda rng: [autodag.Sample((rng.standard_normal((2, 3)),))],
    )]
"""


def run(*args: str, path: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    # AUTODAG_LOAD_PLUGINS stays: it keeps the suite's plugin selection (tests/conftest.py).
    full = {k: v for k, v in os.environ.items()
            if not k.startswith("AUTODAG_") or k == "AUTODAG_LOAD_PLUGINS"}
    full.update(env)
    if path is not None:
        full["PYTHONPATH"] = str(path)
    return subprocess.run([AUTODAG, *args], capture_output=True, text=True, env=full,
                          check=False, timeout=120)


def test_plugins_json_lists_plugins_distributions_and_ops() -> None:
    res = run("plugins", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["builtin"]["builtin"] and by_name["builtin"]["distribution"] is None
    assert (by_name["math"]["distribution"], by_name["math"]["version"]) == (
        "autodag-math", "0.1.0")
    assert by_name["math"]["entry_point"] == "math = autodag_math.plugin"
    assert {"exp", "clip", "where", "less"} <= set(by_name["math"]["ops"])
    assert {"sum", "getitem", "concatenate"} <= set(by_name["array"]["ops"])
    assert {"relu", "softmax_cross_entropy"} <= set(by_name["nn"]["ops"])
    assert data["failed"] == []
    assert [p for p in data["not_loaded"] if meant(p["distribution"])] == []


def test_plugins_text_shows_failed_and_unloaded_plugins(tmp_path: Path) -> None:
    make_dist(tmp_path, "tplug-bad", "0.1", {"bad": "tplug_bad"},
              {"tplug_bad": "raise ImportError('no such thing')\n"})
    res = run("plugins", path=tmp_path, AUTODAG_LOAD_PLUGINS="math,bad")
    assert res.returncode == 0, res.stderr
    assert "math (autodag-math 0.1.0)" in res.stdout
    assert "builtin (built-in)" in res.stdout
    assert "bad (tplug-bad 0.1): import failed: ImportError: no such thing" in res.stdout
    assert "installed but not loaded" in res.stdout and "nn (autodag-nn 0.1.0)" in res.stdout
    assert "PluginWarning" not in res.stderr  # reported once, in the listing


def test_plugins_lists_a_conflict_and_other_commands_keep_working(tmp_path: Path) -> None:
    make_dist(tmp_path / "a", "tplug-one", "1.0", {"one": "tplug_one"}, {"tplug_one": CUBE})
    make_dist(tmp_path / "b", "tplug-two", "2.0", {"two": "tplug_two"},
              {"tplug_two": CUBE.replace("a ** 3", "a * a * a")})
    path = Path(f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    res = run("plugins", path=path)
    assert res.returncode == 0, res.stderr
    assert "cube: defined by one (tplug-one 1.0) and two (tplug-two 2.0)" in res.stdout
    res = run("plugins", "--json", path=path)
    assert res.returncode == 0, res.stderr
    (conflict,) = json.loads(res.stdout)["conflicts"]
    assert [p["distribution"] for p in conflict["providers"]] == ["tplug-one", "tplug-two"]
    res = run("grad", "x*2", "x=1", path=path)
    assert res.returncode == 0, res.stderr
    assert "2" in res.stdout
    res = run("grad", "cube(x)", "x=1", path=path)
    assert res.returncode == 2
    assert "'one' (tplug-one 1.0) and 'two' (tplug-two 2.0)" in res.stderr


def test_check_lists_a_conflict_counts_it_and_exits_1(tmp_path: Path) -> None:
    make_dist(tmp_path / "a", "tplug-one", "1.0", {"one": "tplug_one"}, {"tplug_one": CUBE})
    make_dist(tmp_path / "b", "tplug-two", "2.0", {"two": "tplug_two"},
              {"tplug_two": CUBE.replace("a ** 3", "a * a * a")})
    path = Path(f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    listed = ("conflicts (these ops were left out, not checked):\n"
              "  cube: defined by one (tplug-one 1.0) and two (tplug-two 2.0)\n"
              "    It is left out until resolved: uninstall one of tplug-one, tplug-two, or "
              "set override=True on exactly one definition\n")
    # Another plugin checked: its ops pass, the conflict is still listed and counted.
    res = run("check", "math", path=path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert " 0 failed" in res.stdout and "FAIL" not in res.stdout
    assert listed in res.stdout
    assert res.stdout.splitlines()[-1].endswith(
        "0 skipped; 1 op left out by a plugin conflict")
    assert "PluginWarning" not in res.stderr  # reported once, in the listing
    # A plugin of the conflict checked: its row says the op was left out.
    for name in ("one", "tplug-two"):
        res = run("check", name, path=path)
        assert res.returncode == 1, res.stdout + res.stderr
        assert "no loaded plugin" not in res.stderr
        row = res.stdout.splitlines()[1]
        assert row.split()[:4] == ["cube", name.removeprefix("tplug-"), "left", "out"]
        assert row.endswith("left out (conflict: defined by one and two; see below)")
        assert listed in res.stdout
        assert res.stdout.splitlines()[-1] == (
            "0 passed, 0 failed, 0 skipped; 1 op left out by a plugin conflict")


# One plugin in make test (tests/test_testing.py checks every op in process); all in
# make slow.
@pytest.mark.parametrize("plugin", [
    "builtin", *(pytest.param(p, marks=pytest.mark.slow) for p in ("math", "array", "nn",
                                                                   "linalg"))])
def test_check_passes_for_every_first_party_op(plugin: str) -> None:
    res = run("check", plugin)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["op", "plugin", "result"]
    assert " 0 failed" in res.stdout and "FAIL" not in res.stdout
    rows = [line.split() for line in lines[1:] if line and line.split()[1:2] == [plugin]]
    assert len(rows) >= 9 and all(r[2] == "ok" for r in rows)
    assert lines[-1].startswith(f"{len(rows)} passed, 0 failed")
    if plugin == "builtin":
        text = {ln.split()[0]: " ".join(ln.split()[2:]) for ln in lines[1:len(rows) + 1]}
        assert text["swapaxes"] == "ok (1 sample: gradients, jvp, 2nd order, shapes, float32)"
        assert text["add"] == "ok (4 samples: gradients, jvp, 2nd order, shapes, inline, float32)"
    if plugin == "nn":  # what nn's rules use of the math and array plugins
        after_relu = lines[lines.index(next(ln for ln in lines if ln.startswith("relu "))) + 1]
        assert after_relu.split() == ["needs:", "greater", "(math),", "where", "(math)"]


def test_check_fails_with_exit_code_1_and_names_the_op(tmp_path: Path) -> None:
    make_dist(tmp_path, "tplug-bad", "0.1", {"bad": "tplug_bad"},
              {"tplug_bad": WRONG_GRADIENT})
    res = run("check", "bad", path=tmp_path)
    assert res.returncode == 1
    assert "badsquare  bad     FAIL" in res.stdout
    assert "gradient of input 0 is wrong at index" in res.stdout


def test_check_unknown_plugin_is_exit_code_2() -> None:
    res = run("check", "nosuchplugin")
    assert res.returncode == 2
    assert "no loaded plugin named 'nosuchplugin'" in res.stderr
    res = run("check", "nn", AUTODAG_LOAD_PLUGINS="autodag-math")
    assert res.returncode == 2
    assert "'nn' is installed but not loaded" in res.stderr


NP_COS_RULE = """
import numpy as np
import autodag

def _samples(rng):
    return [autodag.Sample((rng.standard_normal((2, 3)),))]

def np_cos_rule(xp, g, out, a):
    return g * np.cos(np.asarray(a))

@autodag.hookimpl
def autodag_register_ops():
    return [
        autodag.OpDef(name="np_sin", arity=1, forward=np.sin, backward=(np_cos_rule,),
                      samples=_samples),
        autodag.OpDef(name="xp_abs", arity=1, forward=np.abs,
                      backward=(lambda xp, g, out, a: g * xp.abs(a) / a,), samples=_samples),
    ]
"""


def test_check_fails_a_rule_that_breaks_gradients_and_jvp(tmp_path: Path) -> None:
    make_dist(tmp_path, "tplug-rules", "0.1", {"rules": "tplug_rules"},
              {"tplug_rules": NP_COS_RULE})
    res = run("check", "rules", path=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[1].split() == ["np_sin", "rules", "FAIL"]
    assert lines[2].split()[:3] == ["xp_abs", "rules", "ok"]
    assert lines[3].split() == ["needs:", "abs", "(math)"]
    fail = next(ln for ln in lines if ln.startswith("FAIL np_sin (rules): "))
    assert "the backward rule of input 0 of node 'np_sin/0'" in fail
    assert "raised NumpyFunctionError" in fail and "use xp.<name>" in fail
    assert "tplug_rules.py:9: return g * np.cos(np.asarray(a))" in fail
    assert lines[-1] == "1 passed, 1 failed, 0 skipped"
    # The plugin alone: xp.abs is NumPy's for numbers, but gradients need the math op.
    res = run("check", "rules", path=tmp_path, AUTODAG_LOAD_PLUGINS="rules")
    assert res.returncode == 1
    fail = next(ln for ln in res.stdout.splitlines() if ln.startswith("FAIL xp_abs (rules): "))
    assert ("its rules use xp.abs: no op named 'abs' is registered; it is provided by "
            "installed plugin 'math' (autodag-math 0.1.0), which is not loaded") in fail


def test_check_verbose_prints_each_sample_and_the_whole_failure(tmp_path: Path) -> None:
    make_dist(tmp_path, "tplug-rules", "0.1", {"rules": "tplug_rules"},
              {"tplug_rules": NP_COS_RULE})
    quiet = run("check", "rules", path=tmp_path)
    loud = run("check", "-v", "rules", path=tmp_path)
    assert loud.returncode == quiet.returncode == 1
    assert "sample 0 (input shapes (2, 3)): gradients (max |error| " in loud.stdout
    assert "symbolic gradients (max |error| " in loud.stdout
    assert "): gradients (max |error| " not in quiet.stdout
    # The failure in full: the error inside the rule, with its traceback.
    assert "Traceback (most recent call last)" in loud.stdout
    assert "NumpyFunctionError: node " in loud.stdout and "is a graph node" in loud.stdout
    assert "Traceback" not in quiet.stdout


BROKEN = "raise ImportError('no such thing')\n"


def test_check_exits_1_and_says_so_when_a_plugin_failed_to_load(tmp_path: Path) -> None:
    make_dist(tmp_path, "tplug-broken", "0.1", {"broken": "tplug_broken"},
              {"tplug_broken": BROKEN})
    res = run("check", "math", path=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert " 0 failed" in res.stdout and "FAIL" not in res.stdout
    assert ("failed to load (their ops were not checked):\n"
            "  broken (tplug-broken 0.1): import failed: ImportError: no such thing"
            in res.stdout)
    assert res.stdout.splitlines()[-1].endswith("0 skipped; 1 plugin failed to load")
    assert "PluginWarning" not in res.stderr


def test_check_of_a_plugin_that_failed_to_load_says_why(tmp_path: Path) -> None:
    make_dist(tmp_path, "tplug-broken", "0.1", {"broken": "tplug_broken"},
              {"tplug_broken": BROKEN})
    for name in ("broken", "tplug-broken"):
        res = run("check", name, path=tmp_path)
        assert res.returncode == 1, res.stdout + res.stderr
        assert "no loaded plugin" not in res.stderr
        assert ("  broken (tplug-broken 0.1) [asked for]: import failed: ImportError: no such "
                "thing") in res.stdout
        assert res.stdout.splitlines()[-1] == (
            "0 passed, 0 failed, 0 skipped; 1 plugin failed to load")
