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
    assert public == set(ad.__all__) - {"__version__", "hookspecs", "ops"}
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
