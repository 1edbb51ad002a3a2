"""The public surface: __all__ matches what is exported, and every public name is documented."""

from __future__ import annotations

import subprocess
import sys
import types

import autodag as ad


def test_all_matches_public_names() -> None:
    public = {
        n for n in dir(ad)
        if not n.startswith("_") and not isinstance(getattr(ad, n), types.ModuleType)
    }
    assert public == set(ad.__all__) - {"__version__", "hookspecs", "onnx", "ops", "optim",
                                          "testing", "viz"}
    for name in ad.__all__:
        assert getattr(ad, name) is not None


def test_public_callables_have_docstrings() -> None:
    for name in ad.__all__:
        obj = getattr(ad, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), name


def test_import_builds_no_plugin_manager() -> None:
    code = "import autodag.registry as r; import autodag; print(r._manager is None)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_documented_submodules_are_attributes_loaded_on_first_use() -> None:
    code = (
        "import sys, autodag as ad\n"
        "subs = ('autodag.optim', 'autodag.viz', 'autodag.testing')\n"
        "print(sorted(m for m in subs if m in sys.modules))\n"
        "print(ad.optim.Adam.__name__, ad.viz.to_dot.__name__, ad.testing.check_op.__name__)\n"
        "print(sorted(m for m in subs if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["[]", "Adam to_dot check_op",
                   "['autodag.optim', 'autodag.testing', 'autodag.viz']"]
