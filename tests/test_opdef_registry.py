"""Op definitions are validated; the registry credits ops to plugins and follows changes."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag.registry import reset_plugins


def ident(*a: Any, **k: Any) -> Any:
    return a[0] if a else None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "bad name"}, "identifier"),
        ({"name": "class"}, "identifier"),
        ({"arity": -1}, "arity"),
        ({"arity": True}, "arity"),
        ({"forward": 3}, "forward must be callable"),
        ({"backward": (ident,)}, "1 rules for 2 inputs"),
        ({"backward": (ident, 5)}, "input 1 is not callable"),
        ({"backward": "nope"}, "backward must be"),
        ({"attributes": {"name": 1}}, "reserved"),
        ({"input_names": ("a",)}, "input_names"),
    ],
)
def test_opdef_validation(kwargs: dict[str, Any], match: str) -> None:
    base: dict[str, Any] = {"name": "op", "arity": 2, "forward": ident, "backward": (ident, ident)}
    base.update(kwargs)
    with pytest.raises(ad.OpDefinitionError, match=match):
        ad.OpDef(**base)


def test_bind_splits_inputs_and_attributes() -> None:
    op = ad.OpDef(name="f", arity=1, forward=ident, backward=None,
                  attributes={"axis": None, "keepdims": False}, input_names=("a",))
    assert op.bind((1, 0), {}) == ((1,), {"axis": 0, "keepdims": False})
    assert op.bind((), {"a": 1, "keepdims": True}) == ((1,), {"axis": None, "keepdims": True})
    with pytest.raises(TypeError, match="unexpected keyword"):
        op.bind((1,), {"bogus": 1})
    with pytest.raises(TypeError, match="takes 1 input"):
        op.bind((), {})


def test_builtin_ops_are_credited_to_builtin() -> None:
    reg = ad.get_registry()
    for name in ("add", "subtract", "negate", "multiply", "divide", "power", "matmul"):
        assert reg.get(name).plugin.builtin
    assert "matmul" in dir(ad.ops)
    with ad.Graph():
        a = ad.Variable(np.eye(2))
        np.testing.assert_array_equal(ad.evaluate(ad.ops.matmul(a, a)), np.eye(2))


def test_runtime_register_and_unregister() -> None:
    class Square:
        @ad.hookimpl
        def autodag_register_ops(self) -> list[ad.OpDef]:
            return [ad.OpDef(name="square_sq", arity=1, forward=lambda a: a * a,
                             backward=(lambda xp, g, out, a: 2 * g * a,))]

    plugin = Square()
    ad.register_plugin(plugin, name="square-plugin")
    try:
        with ad.Graph():
            x = ad.Variable(3.0)
            z = ad.ops.get("square_sq")(x)
        assert ad.evaluate(z) == 9.0
        assert float(ad.grad(z, [x])[0]) == 6.0
        assert ad.get_registry().get("square_sq").plugin.name == "square-plugin"
    finally:
        ad.unregister_plugin(plugin)
    with pytest.raises(ad.OpNotFoundError):
        ad.ops.get("square_sq")


def test_conflicting_runtime_plugin_is_refused_and_rolled_back() -> None:
    class Clash:
        @ad.hookimpl
        def autodag_register_ops(self) -> list[ad.OpDef]:
            return [ad.OpDef(name="add", arity=2, forward=lambda a, b: a, backward=None)]

    with pytest.raises(ad.PluginConflictError, match=r"'add'.*'builtin'.*'clash'"):
        ad.register_plugin(Clash(), name="clash")
    assert ad.get_registry().get("add").plugin.builtin


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A throwaway installed distribution declaring an autodag entry point."""
    (tmp_path / "cube_plugin.py").write_text(textwrap.dedent("""
        import autodag

        @autodag.hookimpl
        def autodag_register_ops():
            return [autodag.OpDef(name="cube", arity=1, forward=lambda a: a ** 3,
                                  backward=(lambda xp, g, out, a: 3 * g * a * a,))]
    """))
    info = tmp_path / "tplug_cube-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tplug-cube\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text("[autodag]\ncube = cube_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reset_plugins()
    yield tmp_path
    sys.modules.pop("cube_plugin", None)
    reset_plugins()


def test_entry_point_plugin_is_discovered(fake_distribution: Path) -> None:
    reg = ad.get_registry()
    op = reg.get("cube")
    assert (op.plugin.name, op.plugin.distribution, op.plugin.version) == (
        "cube", "tplug-cube", "1.2.3")
    with ad.Graph():
        x = ad.Variable(2.0)
        z = ad.ops.get("cube")(x)
    assert float(ad.grad(z, [x])[0]) == 12.0


@pytest.mark.parametrize(
    ("inline", "inline_vjps", "match"),
    [
        ("{0} + {2}", None, "unknown field"),
        ("__import__('os')", None, "Call|numeric constants|only xp"),
        ("{0}.real", None, "only xp"),
        ("{0} + (", None, "not an expression"),
        ("[{0}]", None, "List"),
        (None, ("{g}",), "one entry per"),
        (None, ("{g} * {1}", None), "both be given"),
        (None, ("{g} * {1}", "{h}"), "Set is not allowed"),
    ],
)
def test_inline_templates_are_checked(
    inline: str | None, inline_vjps: tuple[str | None, ...] | None, match: str
) -> None:
    with pytest.raises(ad.OpDefinitionError, match=match):
        ad.OpDef(name="op", arity=2, forward=ident, backward=(ident, ident),
                 inline=inline, inline_vjps=inline_vjps)


def test_valid_inline_templates_are_accepted() -> None:
    op = ad.OpDef(name="op", arity=2, forward=ident, backward=(ident, ident),
                  inline="{0} * {1} + 2", inline_vjps=("{g} * {1}", "xp.negate({g}) * {0}"))
    assert op.inline_vjps == ("{g} * {1}", "xp.negate({g}) * {0}")
