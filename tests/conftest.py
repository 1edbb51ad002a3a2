"""The suite sees only the plugins it means to see, whatever else is installed.

Those are the first-party plugins of ``plugins/`` and the throwaway distributions tests
write for themselves (named ``tplug-*``). Other installed plugins (a plugin author's own,
one that fails to import) are neither imported nor listed: in this process the entry
points are filtered, and subprocesses inherit ``AUTODAG_LOAD_PLUGINS``.
"""

from __future__ import annotations

import importlib.metadata as md
import os

from autodag import plugins

from .isolation import MEANT, meant

os.environ[plugins.ENV_LOAD_ONLY] = ",".join(MEANT)
for _var in (plugins.ENV_DISABLE_AUTOLOAD, plugins.ENV_STRICT):
    os.environ.pop(_var, None)

_installed = plugins.installed_entry_points


def _meant(ep: md.EntryPoint) -> bool:
    dist = getattr(ep, "dist", None)
    return meant(dist.metadata["Name"] if dist is not None else None)


def _meant_entry_points() -> list[md.EntryPoint]:
    return [ep for ep in _installed() if _meant(ep)]


# Patched at import, before any test module is collected (some build ops at import).
plugins.installed_entry_points = _meant_entry_points
