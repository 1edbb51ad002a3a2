"""Plugin discovery through real entry points, environment variables, conflicts, failures."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest

import autodag as ad
from autodag import registry

CUBE = """
import autodag

@autodag.hookimpl
def autodag_register_ops():
    return [autodag.OpDef(name="cube", arity=1, forward=lambda a: a ** 3,
                          backward=(lambda xp, g, out, a: 3 * g * a * a,))]
"""


def make_dist(
    root: Path, dist: str, version: str, entry_points: Mapping[str, str],
    modules: Mapping[str, str],
) -> Path:
    """Write an installed distribution (modules plus a .dist-info) into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for mod, source in modules.items():
        (root / f"{mod}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[autodag]\n{lines}")
    return root


@pytest.fixture
def plugin_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Plugin state rebuilt from scratch for the test, and again afterwards."""
    yield from fresh_plugins(monkeypatch)


def fresh_plugins(monkeypatch: pytest.MonkeyPatch,
                  keep_load_only: bool = False) -> Iterator[pytest.MonkeyPatch]:
    """``plugin_env``'s body: also for other modules' fixtures (``keep_load_only``: the
    suite's own ``AUTODAG_LOAD_PLUGINS`` stays, so other installed plugins stay out)."""
    names = [registry.ENV_DISABLE_AUTOLOAD, registry.ENV_STRICT]
    if not keep_load_only:
        names.append(registry.ENV_LOAD_ONLY)
    for var in names:
        monkeypatch.delenv(var, raising=False)
    before = set(sys.modules)
    ad.reset_plugins()
    yield monkeypatch
    for mod in set(sys.modules) - before:
        if mod.startswith("tplug_"):
            del sys.modules[mod]
    ad.reset_plugins()


def install(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    monkeypatch.syspath_prepend(str(root))
    ad.reset_plugins()


def test_manager_is_built_on_first_use_not_at_import() -> None:
    code = (
        "import autodag, autodag.registry as r, sys\n"
        "assert r._manager is None, 'built at import'\n"
        "assert not any(m.startswith('autodag_') for m in sys.modules), 'plugin imported'\n"
        "autodag.get_registry()\n"
        "assert r._manager is not None\n"
        "assert 'autodag_math' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_first_party_plugins_are_found_through_their_entry_points() -> None:
    reg = ad.get_registry()
    expected = {"exp": "autodag-math", "sum": "autodag-array", "relu": "autodag-nn"}
    for op, dist in expected.items():
        info = reg.get(op).plugin
        assert (info.distribution, info.version) == (dist, "0.1.0")
        assert info.entry_point is not None and info.entry_point.startswith(info.name)


def test_throwaway_distribution_is_discovered(plugin_env: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    install(plugin_env, make_dist(tmp_path, "tplug-cube", "1.2.3", {"cube": "tplug_cube"},
                                  {"tplug_cube": CUBE}))
    op = ad.get_registry().get("cube")
    assert (op.plugin.name, op.plugin.distribution, op.plugin.version) == (
        "cube", "tplug-cube", "1.2.3")
    with ad.Graph():
        x = ad.Variable(2.0)
        z = ad.ops.get("cube")(x)
    assert float(ad.grad(z, [x])[0]) == 12.0


def test_disable_autoload_keeps_builtin_only_and_imports_nothing(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install(plugin_env, make_dist(tmp_path, "tplug-cube", "1.0", {"cube": "tplug_cube"},
                                  {"tplug_cube": CUBE}))
    plugin_env.setenv(registry.ENV_DISABLE_AUTOLOAD, "1")
    reg = ad.get_registry()
    assert [p.name for p in reg.plugins] == ["builtin"]
    assert "tplug_cube" not in sys.modules  # blocked before import
    assert {info.name for info, _ in reg.unloaded} >= {"cube", "math", "array", "nn"}


def test_load_plugins_selects_by_name(plugin_env: pytest.MonkeyPatch) -> None:
    plugin_env.setenv(registry.ENV_LOAD_ONLY, "math, array")
    assert [p.name for p in ad.get_registry().plugins] == ["builtin", "array", "math"]
    plugin_env.setenv(registry.ENV_LOAD_ONLY, "")
    ad.reset_plugins()
    assert [p.name for p in ad.get_registry().plugins] == ["builtin"]
    plugin_env.setenv(registry.ENV_LOAD_ONLY, "math,mth")
    ad.reset_plugins()
    with pytest.warns(ad.PluginWarning, match=r"AUTODAG_LOAD_PLUGINS names 'mth', but no "
                                              r"installed plugin has that name; installed: "
                                              r"array, linalg, math, nn"):
        assert [p.name for p in ad.get_registry().plugins] == ["builtin", "math"]


def test_missing_op_names_the_installed_package_that_provides_it(
    plugin_env: pytest.MonkeyPatch,
) -> None:
    plugin_env.setenv(registry.ENV_LOAD_ONLY, "math")
    with ad.Graph():
        x = ad.Variable(np.ones(3))
        with pytest.raises(ad.OpNotFoundError, match=r"'sum'.*'array' \(autodag-array 0\.1\.0\)"
                           r".*not loaded"):
            x.sum()
        with pytest.raises(ad.OpNotFoundError, match=r"no loaded plugin provides it, and these "
                           r"installed plugins are not loaded: 'array' \(autodag-array 0\.1\.0\), "
                           r"'linalg' \(autodag-linalg 0\.1\.0\), 'nn'"):
            ad.ops.frobnicate  # type: ignore[attr-defined]  # noqa: B018


def test_conflict_names_both_plugins_and_distributions(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = CUBE.replace("a ** 3", "a * a * a")
    make_dist(tmp_path, "tplug-one", "1.0", {"one": "tplug_one"}, {"tplug_one": CUBE})
    install(plugin_env, make_dist(tmp_path, "tplug-two", "2.0", {"two": "tplug_two"},
                                  {"tplug_two": other}))
    both = r"'cube'.*'one' \(tplug-one 1\.0\) and 'two' \(tplug-two 2\.0\)"
    with pytest.warns(ad.PluginWarning, match=both + r".*uninstall one of tplug-one, tplug-two"):
        reg = ad.get_registry()
    # Only the op in conflict is left out: everything else keeps working.
    assert "cube" not in reg and [c for c in reg.conflicts] == ["cube"]
    with ad.Graph():
        x = ad.Variable(2.0)
        assert float(ad.grad(x * 2.0, [x])[0]) == 2.0
        with pytest.raises(ad.OpConflictError, match=both + r".*override=True"):
            ad.ops.get("cube")(x)
    ad.register_plugin(type("Nothing", (), {})(), name="nothing")  # a rebuild warns no more


def install_two_cubes(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Two distributions defining the same op, neither overriding."""
    make_dist(root, "tplug-one", "1.0", {"one": "tplug_one"}, {"tplug_one": CUBE})
    install(monkeypatch, make_dist(root, "tplug-two", "2.0", {"two": "tplug_two"},
                                   {"tplug_two": CUBE}))


def test_strict_mode_turns_a_conflict_into_an_error(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install_two_cubes(plugin_env, tmp_path)
    plugin_env.setenv(registry.ENV_STRICT, "1")
    with pytest.raises(ad.PluginConflictError, match=r"'cube'.*tplug-one.*tplug-two"):
        ad.get_registry()


def test_plugins_command_lists_a_conflict_with_both_providers(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import argparse
    import io
    import json

    from autodag.plugin_cli import plugins_command

    install_two_cubes(plugin_env, tmp_path)
    out, err = io.StringIO(), io.StringIO()
    assert plugins_command(argparse.Namespace(json=True), out, err) == 0
    (conflict,) = json.loads(out.getvalue())["conflicts"]
    assert conflict["op"] == "cube"
    assert [(p["name"], p["distribution"], p["version"]) for p in conflict["providers"]] == [
        ("one", "tplug-one", "1.0"), ("two", "tplug-two", "2.0")]
    out = io.StringIO()
    assert plugins_command(argparse.Namespace(json=False), out, err) == 0
    text = out.getvalue()
    assert "conflicts" in text and "cube" in text
    assert "tplug-one 1.0" in text and "tplug-two 2.0" in text


def test_override_replaces_the_other_definition(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fast = CUBE.replace("backward=", "override=True, backward=").replace("a ** 3", "a*a*a + 1")
    make_dist(tmp_path, "tplug-one", "1.0", {"one": "tplug_one"}, {"tplug_one": CUBE})
    install(plugin_env, make_dist(tmp_path, "tplug-two", "2.0", {"two": "tplug_two"},
                                  {"tplug_two": fast}))
    op = ad.get_registry().get("cube")
    assert op.plugin.name == "two"
    assert [p.name for p in op.overrides] == ["one"]
    assert op.opdef.forward(2.0) == 9.0


BROKEN_IMPORT = "import autodag\nraise RuntimeError('boom at import')\n"
MALFORMED = """
import autodag

@autodag.hookimpl
def autodag_register_ops():
    return ["not an op"]
"""
INVALID_OPDEF = """
import autodag

@autodag.hookimpl
def autodag_register_ops():
    return [autodag.OpDef(name="bad op", arity=1, forward=abs, backward=None)]
"""
MISSPELT = """
import autodag

@autodag.hookimpl
def autodag_register_opps():
    return []
"""


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (BROKEN_IMPORT, r"import failed: RuntimeError: boom at import"),
        (MALFORMED, r"malformed op definitions: .*not OpDef.*'not an op'"),
        (INVALID_OPDEF, r"malformed op definitions: autodag_register_ops raised "
                        r"OpDefinitionError: op 'bad op': op name must be a Python identifier"),
        (MISSPELT, r"unknown hook.*autodag_register_opps"),
    ],
)
def test_broken_plugin_is_skipped_with_a_warning(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path, source: str, reason: str
) -> None:
    install(plugin_env, make_dist(tmp_path, "tplug-bad", "0.1", {"bad": "tplug_bad"},
                                  {"tplug_bad": source}))
    with pytest.warns(ad.PluginWarning,
                      match=rf"'bad' of tplug-bad from entry point 'bad = tplug_bad'.*{reason}"):
        reg = ad.get_registry()
    assert [f.name for f in reg.failed] == ["bad"]
    assert "bad" not in [p.name for p in reg.plugins]
    assert reg.get("exp").plugin.name == "math"  # everything else keeps working
    ad.register_plugin(type("Nothing", (), {})(), name="nothing")  # a rebuild: no new warning
    assert [f.name for f in ad.get_registry().failed] == ["bad"]


def test_strict_mode_turns_a_broken_plugin_into_an_error(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install(plugin_env, make_dist(tmp_path, "tplug-bad", "0.1", {"bad": "tplug_bad"},
                                  {"tplug_bad": BROKEN_IMPORT}))
    plugin_env.setenv(registry.ENV_STRICT, "1")
    with pytest.raises(ad.PluginLoadError, match=r"'bad' of tplug-bad.*boom at import"):
        ad.get_registry()


def test_missing_op_mentions_plugins_that_failed(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install(plugin_env, make_dist(tmp_path, "tplug-bad", "0.1", {"bad": "tplug_bad"},
                                  {"tplug_bad": BROKEN_IMPORT}))
    with pytest.warns(ad.PluginWarning):
        reg = ad.get_registry()
    with pytest.raises(ad.OpNotFoundError, match=r"failed to load: 'bad' \(tplug-bad\)"):
        reg.get("cube")


def test_runtime_register_and_unregister_follow_the_registry(
    plugin_env: pytest.MonkeyPatch,
) -> None:
    class Twice:
        @ad.hookimpl
        def autodag_register_ops(self) -> list[ad.OpDef]:
            return [ad.OpDef(name="twice", arity=1, forward=lambda a: 2 * a,
                             backward=(lambda xp, g, out, a: 2 * g,))]

    plugin = Twice()
    assert ad.register_plugin(plugin, name="twice-plugin") == "twice-plugin"
    assert ad.get_registry().get("twice").plugin.describe() == (
        "'twice-plugin' (registered at run time)")
    ad.unregister_plugin("twice-plugin")
    assert "twice" not in ad.get_registry()
    with pytest.raises(ad.PluginLoadError, match="no plugin named"):
        ad.unregister_plugin("twice-plugin")
    # The manager itself is public; registering through it is followed as well.
    ad.get_plugin_manager().register(plugin, name="direct")
    assert ad.get_registry().get("twice").plugin.name == "direct"


@pytest.mark.parametrize(
    ("result", "match"),
    [
        ([1, 2], r"plugin 'rt' was not registered: .*2 item\(s\) that are not OpDef"),
        (42, r"plugin 'rt' was not registered: .*returned int"),
        (ZeroDivisionError("oops"), r"'rt' was not registered: .*raised ZeroDivisionError: oops"),
    ],
)
def test_runtime_registration_of_a_malformed_plugin_raises(
    plugin_env: pytest.MonkeyPatch, result: object, match: str
) -> None:
    class Malformed:
        @ad.hookimpl
        def autodag_register_ops(self) -> object:
            if isinstance(result, Exception):
                raise result
            return result

    with pytest.raises(ad.PluginLoadError, match=match):
        ad.register_plugin(Malformed(), name="rt")
    assert ad.get_plugin_manager().get_plugin("rt") is None


def test_runtime_registration_with_a_misspelt_hook_raises(
    plugin_env: pytest.MonkeyPatch,
) -> None:
    class Misspelt:
        @ad.hookimpl
        def autodag_register_opz(self) -> list[ad.OpDef]:
            return []

    with pytest.raises(ad.PluginLoadError, match="unknown hook 'autodag_register_opz'"):
        ad.register_plugin(Misspelt(), name="misspelt")
    assert ad.get_plugin_manager().get_plugin("misspelt") is None


# Import-time code that leaves a trace, so that a test can tell whether it ran.
NOISY_CUBE = """
import pathlib, os
pathlib.Path(os.environ["TPLUG_TRACE"]).write_text("imported")
""" + CUBE


@pytest.mark.parametrize("setting", [(registry.ENV_DISABLE_AUTOLOAD, "1"),
                                     (registry.ENV_LOAD_ONLY, "math")])
def test_left_out_plugins_are_never_imported_even_to_explain_a_missing_op(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path, setting: tuple[str, str]
) -> None:
    trace = tmp_path / "trace"
    plugin_env.setenv("TPLUG_TRACE", str(trace))
    install(plugin_env, make_dist(tmp_path / "site", "tplug-cube", "1.0",
                                  {"cube": "tplug_cube"}, {"tplug_cube": NOISY_CUBE}))
    plugin_env.setenv(*setting)
    with ad.Graph():
        x = ad.Variable(2.0)
        with pytest.raises(ad.OpNotFoundError,
                           match=r"'cube'.*provided by installed plugin 'cube' \(tplug-cube "
                                 r"1\.0\), which is not loaded"):
            ad.ops.get("cube")(x)
        with pytest.raises(ad.OpNotFoundError, match=r"'cube' \(tplug-cube 1\.0\)"):
            ad.ops.get("frobnicate")(x)
    assert not trace.exists() and "tplug_cube" not in sys.modules


def test_a_left_out_package_plugin_is_read_not_imported(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    plugin_env.setenv("TPLUG_TRACE", str(trace))
    site = tmp_path / "site"
    (site / "tplug_pkg").mkdir(parents=True)
    (site / "tplug_pkg" / "__init__.py").write_text(NOISY_CUBE.split("import autodag")[0])
    (site / "tplug_pkg" / "plugin.py").write_text(
        "from ._defs import OPS\nimport autodag\n\n@autodag.hookimpl\n"
        "def autodag_register_ops():\n    return OPS\n")
    (site / "tplug_pkg" / "_defs.py").write_text(
        "import autodag\nOPS = [autodag.OpDef(name='tesseract', arity=1, forward=abs, "
        "backward=None)]\n")
    install(plugin_env, make_dist(site, "tplug-pkg", "1.0", {"pkg": "tplug_pkg.plugin"}, {}))
    plugin_env.setenv(registry.ENV_DISABLE_AUTOLOAD, "1")
    with pytest.raises(ad.OpNotFoundError, match=r"'pkg' \(tplug-pkg 1\.0\), which is not"):
        ad.get_registry().get("tesseract")
    assert not trace.exists() and "tplug_pkg" not in sys.modules


def test_load_plugins_takes_patterns(plugin_env: pytest.MonkeyPatch) -> None:
    plugin_env.setenv(registry.ENV_LOAD_ONLY, "autodag-m*, ar?ay")
    assert [p.name for p in ad.get_registry().plugins] == ["builtin", "array", "math"]


def test_plugin_warnings_point_at_the_users_line(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install(plugin_env, make_dist(tmp_path, "tplug-bad", "0.1", {"bad": "tplug_bad"},
                                  {"tplug_bad": BROKEN_IMPORT}))
    with pytest.warns(ad.PluginWarning) as caught:
        ad.get_registry()
    assert [w.filename for w in caught] == [__file__]


def test_strict_mode_says_the_plugin_failed_and_why_it_is_an_error(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install(plugin_env, make_dist(tmp_path, "tplug-bad", "0.1", {"bad": "tplug_bad"},
                                  {"tplug_bad": BROKEN_IMPORT}))
    plugin_env.setenv(registry.ENV_STRICT, "1")
    with pytest.raises(ad.PluginLoadError, match=r"failed to load.*AUTODAG_STRICT_PLUGINS") as e:
        ad.get_registry()
    assert "skipped" not in str(e.value)


def test_a_misspelt_hook_gets_a_suggestion(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = MISSPELT.replace("autodag_register_opps", "autodag_register_op")
    install(plugin_env, make_dist(tmp_path, "tplug-bad", "0.1", {"bad": "tplug_bad"},
                                  {"tplug_bad": source}))
    with pytest.warns(ad.PluginWarning, match=r"did you mean autodag_register_ops\?"):
        ad.get_registry()

    class Misspelt:
        @ad.hookimpl
        def autodag_register_op(self) -> list[ad.OpDef]:
            return []

    with pytest.raises(ad.PluginLoadError, match=r"did you mean autodag_register_ops\?"):
        ad.register_plugin(Misspelt(), name="misspelt")


def test_a_plugin_defining_an_op_twice_is_skipped_not_fatal(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    twice = CUBE.replace("return [", "return [autodag.OpDef(name='cube', arity=1, "
                                     "forward=abs, backward=None), ")
    install(plugin_env, make_dist(tmp_path, "tplug-bad", "0.1", {"bad": "tplug_bad"},
                                  {"tplug_bad": twice}))
    with pytest.warns(ad.PluginWarning, match=r"defines op 'cube' more than once"):
        reg = ad.get_registry()
    assert "cube" not in reg and reg.get("add").plugin.builtin


FOREIGN = {
    # A plugin author's own package, with an op named like the suite's fixtures...
    "foreign_cube": CUBE,
    # ...and one that cannot even be imported.
    "foreign_broken": BROKEN_IMPORT,
}


@pytest.mark.slow
def test_the_suite_passes_with_foreign_plugins_installed(tmp_path: Path) -> None:
    site = make_dist(tmp_path, "foreign-cube", "9.9", {"cube": "foreign_cube"},
                     {"foreign_cube": FOREIGN["foreign_cube"]})
    make_dist(site, "foreign-broken", "0.0.1", {"broken": "foreign_broken"},
              {"foreign_broken": FOREIGN["foreign_broken"]})
    here = Path(__file__).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTODAG_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    # Outside the suite the foreign plugins are really seen (so the check below means
    # something): the conflict-free 'cube' loads, the broken one is reported.
    probe = subprocess.run(
        [sys.executable, "-W", "ignore", "-c",
         "import autodag as ad; r = ad.get_registry(); "
         "print(r.get('cube').plugin.distribution, [f.name for f in r.failed])"],
        capture_output=True, text=True, env=env, check=True)
    assert probe.stdout.split() == ["foreign-cube", "['broken']"]
    tests = ["test_plugins.py", "test_opdef_registry.py", "test_forward_mode.py",
             "test_plugins_cli.py", "test_public_api.py"]
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider",
         *(str(here / t) for t in tests)],
        capture_output=True, text=True, env=env, cwd=here.parent)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
