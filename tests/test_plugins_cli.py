"""``autodag plugins`` and ``autodag check``, run as the installed command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    full = {k: v for k, v in os.environ.items() if not k.startswith("AUTODAG_")}
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
    assert data["failed"] == [] and data["not_loaded"] == []


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


def test_plugins_reports_a_conflict_with_exit_code_1(tmp_path: Path) -> None:
    make_dist(tmp_path / "a", "tplug-one", "1.0", {"one": "tplug_one"}, {"tplug_one": CUBE})
    make_dist(tmp_path / "b", "tplug-two", "2.0", {"two": "tplug_two"},
              {"tplug_two": CUBE.replace("a ** 3", "a * a * a")})
    res = run("plugins", path=Path(f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"))
    assert res.returncode == 1
    assert "'one' (tplug-one 1.0) and 'two' (tplug-two 2.0)" in res.stderr


@pytest.mark.parametrize("plugin", ["math", "array", "nn"])
def test_check_passes_for_every_first_party_op(plugin: str) -> None:
    res = run("check", plugin)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["op", "plugin", "result"]
    assert " 0 failed" in res.stdout and "FAIL" not in res.stdout
    rows = [line.split() for line in lines[1:] if line and line.split()[1:2] == [plugin]]
    assert len(rows) >= 9 and all(r[2] == "ok" for r in rows)


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
