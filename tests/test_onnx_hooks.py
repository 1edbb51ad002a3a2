"""The ``autodag_onnx_converters`` hook: a third-party op exports through its plugin's
converter; broken converter plugins are skipped, conflicts reported, as for ops."""

from __future__ import annotations

import argparse
import io
import json
import math
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag import hooktables, registry
from autodag.plugin_cli import plugins_command
from tests.test_plugins import CUBE, fresh_plugins, make_dist

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

import autodag.onnx as adx  # noqa: E402


@pytest.fixture
def plugin_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Plugin state rebuilt from scratch for the test, and again afterwards."""
    yield from fresh_plugins(monkeypatch, keep_load_only=True)


def install(monkeypatch: pytest.MonkeyPatch, root: Path, dist: str, source: str) -> None:
    name = dist.removeprefix("tplug-")
    make_dist(root, dist, "0.1", {name: f"tplug_{name}"}, {f"tplug_{name}": source})
    monkeypatch.syspath_prepend(str(root))
    ad.reset_plugins()


def _softsign(a: Any) -> Any:
    return a / (1 + np.abs(a))


SOFTSIGN = ad.OpDef(name="softsign", arity=1, forward=_softsign,
                    backward=(lambda xp, g, out, a: g / (1 + xp.abs(a)) ** 2,))


def softsign_onnx(ctx: Any) -> str:
    x = ctx.input(0)
    one = ctx.constant(1.0, ctx.out_dtype)
    return str(ctx.op("Div", [x, ctx.op("Add", [one, ctx.op("Abs", [x])])]))


class Softsign:
    """A third-party plugin: its op and that op's ONNX converter."""

    @ad.hookimpl
    def autodag_register_ops(self) -> list[ad.OpDef]:
        return [SOFTSIGN]

    @ad.hookimpl
    def autodag_onnx_converters(self) -> dict[str, Any]:
        return {"softsign": softsign_onnx}


def _run(model: Any, *feeds: Any) -> list[Any]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    out: list[Any] = sess.run(None, dict(zip(names, feeds, strict=True)))
    return out


def _plugins_json() -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    assert plugins_command(argparse.Namespace(json=True), out, err) == 0
    data: dict[str, Any] = json.loads(out.getvalue())
    return data


def test_a_third_party_op_exports_through_its_plugins_converter(
    plugin_env: pytest.MonkeyPatch,
) -> None:
    ad.register_plugin(Softsign(), name="softsign-plugin")
    xs = np.array([-2.0, -0.5, 0.0, 3.0])
    with ad.Graph():
        x = ad.Placeholder("x", shape=(4,))
        y = ad.ops.get("softsign")(x) * 2.0
        (g,) = ad.gradients(ad.ops.sum(y), [x])
        model = adx.export([y, g], None, inputs=[x])
    got_y, got_g = _run(model, xs)
    np.testing.assert_allclose(got_y, 2 * xs / (1 + np.abs(xs)), rtol=1e-12)
    np.testing.assert_allclose(got_g, 2 / (1 + np.abs(xs)) ** 2, rtol=1e-12)
    assert adx.converters()["softsign"] == "softsign-plugin"
    entry = {p["name"]: p for p in _plugins_json()["plugins"]}["softsign-plugin"]
    assert entry["onnx_converters"] == ["softsign"]
    out = io.StringIO()
    plugins_command(argparse.Namespace(json=False), out, io.StringIO())
    assert "ONNX converters: 1" in out.getvalue()


RAISES = CUBE + """

@autodag.hookimpl
def autodag_onnx_converters():
    raise RuntimeError("converters broke")
"""
GARBAGE = RAISES.replace('raise RuntimeError("converters broke")', "return ['add']")
NOT_CALLABLE = RAISES.replace('raise RuntimeError("converters broke")', "return {'add': 3}")


@pytest.mark.parametrize(("source", "reason"), [
    (RAISES, r"raised RuntimeError: converters broke"),
    (GARBAGE, r"returned list, expected a mapping"),
    (NOT_CALLABLE, r"malformed ONNX converter for op 'add': int 3 is not callable"),
])
def test_a_broken_converter_plugin_is_skipped_and_others_keep_working(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path, source: str, reason: str
) -> None:
    install(plugin_env, tmp_path, "tplug-badconv", source)
    with pytest.warns(ad.PluginWarning, match=rf"'badconv' \(tplug-badconv 0.1\).*{reason}"):
        table = registry.get_table(hooktables.ONNX_CONVERTERS)
    assert [f.name for f in table.failed] == ["badconv"]
    with ad.Graph():
        assert float(ad.evaluate(ad.ops.get("cube")(ad.Variable(2.0)))) == 8.0  # its ops stay
        x = ad.Placeholder("x", shape=(2,))
        model = adx.export(ad.ops.exp(x) + x, None, inputs=[x])
    np.testing.assert_allclose(_run(model, np.array([0.0, 1.0]))[0], [1.0, 1 + math.e])
    (failed,) = _plugins_json()["onnx_converters_failed"]
    assert failed["name"] == "badconv"


def test_strict_mode_makes_a_broken_converter_plugin_an_error(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install(plugin_env, tmp_path, "tplug-badconv", RAISES)
    plugin_env.setenv(registry.ENV_STRICT, "1")
    with ad.Graph():
        x = ad.Placeholder("x", shape=(2,))
        with pytest.raises(ad.PluginLoadError, match="converters broke"):
            adx.export(x + 1.0, None, inputs=[x])


ADD_AGAIN = """
import autodag

def _add(ctx):
    return ctx.op("Sum", [ctx.input(0), ctx.input(1)])

@autodag.hookimpl
def autodag_onnx_converters():
    return {"add": _add}
"""


def test_two_plugins_converting_one_op_is_a_conflict(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install(plugin_env, tmp_path, "tplug-addconv", ADD_AGAIN)
    both = r"ONNX converter of op 'add' is given by plugins .*'builtin'.*'addconv'"
    with pytest.warns(ad.PluginWarning, match=both + ".*Override"):
        registry.get_table(hooktables.ONNX_CONVERTERS)
    with ad.Graph():
        x = ad.Placeholder("x", shape=(2,))
        with pytest.raises(ad.AutodagError, match=r"cannot export node 'add/0'.*" + both):
            adx.export(x + x, None, inputs=[x])
        model = adx.export(x * x, None, inputs=[x])  # the other ops keep working
    assert _run(model, np.array([3.0, 4.0]))[0].tolist() == [9.0, 16.0]
    (conflict,) = _plugins_json()["onnx_converters_conflicts"]
    assert conflict["op"] == "add" and set(conflict["providers"]) == {"builtin", "addconv"}


def test_override_replaces_the_other_converter(
    plugin_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = ADD_AGAIN.replace('{"add": _add}', '{"add": autodag.onnx.Override(_add)}')
    install(plugin_env, tmp_path, "tplug-addconv",
            source.replace("import autodag\n", "import autodag\nimport autodag.onnx\n"))
    with ad.Graph():
        x = ad.Placeholder("x", shape=(2,))
        model = adx.export(x + x, None, inputs=[x])
    assert "Sum" in {n.op_type for n in model.graph.node}
    # A plugin that gives converters only is listed with them.
    entry = {p["name"]: p for p in _plugins_json()["plugins"]}["addconv"]
    assert entry["ops"] == [] and entry["onnx_converters"] == ["add"]
    assert _run(model, np.array([1.0, 2.0]))[0].tolist() == [2.0, 4.0]
    provided = registry.get_table(hooktables.ONNX_CONVERTERS).items["add"]
    assert provided.plugin.name == "addconv"
    assert [p.name for p in provided.overrides] == ["builtin"]


def test_runtime_registration_refuses_broken_or_conflicting_converters(
    plugin_env: pytest.MonkeyPatch,
) -> None:
    class Broken:
        @ad.hookimpl
        def autodag_onnx_converters(self) -> object:
            return 42

    class Clash:
        @ad.hookimpl
        def autodag_onnx_converters(self) -> object:
            return {"multiply": softsign_onnx}

    with pytest.raises(ad.PluginLoadError, match=r"'broken' was not registered.*returned int"):
        ad.register_plugin(Broken(), name="broken")
    with pytest.raises(ad.PluginConflictError,
                       match=r"'clash' was not registered.*op 'multiply'"):
        ad.register_plugin(Clash(), name="clash")
    pm = ad.get_plugin_manager()
    assert pm.get_plugin("broken") is None and pm.get_plugin("clash") is None
    assert adx.converters()["multiply"] == "builtin"


def test_plugins_load_and_list_converters_without_onnx_installed() -> None:
    code = textwrap.dedent("""
        import sys
        sys.modules["onnx"] = None  # import onnx now fails, as when it is not installed
        import autodag as ad, autodag.onnx as adx
        from autodag import hooktables, registry
        table = registry.get_table(hooktables.ONNX_CONVERTERS)
        assert {"add", "exp", "sum", "relu", "einsum"} <= set(table.items), table.items
        assert not table.failed, table.failed
        with ad.Graph():
            x = ad.Placeholder("x", shape=(2,))
            try:
                adx.export(x + 1.0, None, inputs=[x])
            except ad.AutodagError as exc:
                print(exc)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "pip install autodag[onnx]" in done.stdout


@pytest.mark.parametrize(("converter", "match"), [
    (lambda ctx: 1 / 0, r"converter of op 'softsign' \(from plugin 'buggy'.*failed on node "
                        r"'softsign/0'.*ZeroDivisionError"),
    (lambda ctx: "nonsense", r"converter of op 'softsign'.*returned 'nonsense'"),
])
def test_a_failing_converter_is_an_error_naming_op_plugin_and_node(
    plugin_env: pytest.MonkeyPatch, converter: Any, match: str
) -> None:
    class Buggy(Softsign):
        @ad.hookimpl
        def autodag_onnx_converters(self) -> dict[str, Any]:
            return {"softsign": converter}

    ad.register_plugin(Buggy(), name="buggy")
    with ad.Graph():
        x = ad.Placeholder("x", shape=(2,))
        with pytest.raises(ad.AutodagError, match=match):
            adx.export(ad.ops.get("softsign")(x), None, inputs=[x])
