"""Plugin loading: the pluggy manager, entry points, the environment's settings.

``build_manager`` makes a plugin manager holding the built-in plugin and every entry
point of the ``autodag`` group the environment allows. Entry points are loaded one by
one so that a broken plugin is reported and skipped (``report``: a ``PluginWarning``, or
``PluginLoadError`` in strict mode) instead of taking the library down. ``Hooks`` is the
only code that touches pluggy's untyped ``pm.hook``. This module holds no state: the
manager of the process, and the op registry built from it, live in ``autodag.registry``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pluggy

if TYPE_CHECKING:
    # importlib.metadata costs tens of milliseconds: imported when plugins load, not here.
    import importlib.metadata as md

from . import builtin, hookspecs
from .errors import PluginLoadError, PluginWarning
from .opdef import OpDef

__all__ = [
    "BUILTIN_NAME",
    "ENTRY_POINT_GROUP",
    "ENV_DISABLE_AUTOLOAD",
    "ENV_LOAD_ONLY",
    "ENV_STRICT",
    "FailedPlugin",
    "Hooks",
    "Manager",
    "PluginInfo",
    "build_manager",
    "collect_ops",
    "peek_ops",
    "report",
]

ENTRY_POINT_GROUP: Final = "autodag"
BUILTIN_NAME: Final = "builtin"
ENV_DISABLE_AUTOLOAD: Final = "AUTODAG_DISABLE_PLUGIN_AUTOLOAD"
ENV_LOAD_ONLY: Final = "AUTODAG_LOAD_PLUGINS"
ENV_STRICT: Final = "AUTODAG_STRICT_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """Where a plugin came from: its name, distribution and version."""

    name: str
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None

    @property
    def builtin(self) -> bool:
        """True for the plugin that ships inside autodag itself."""
        return self.name == BUILTIN_NAME and self.distribution is None

    def describe(self) -> str:
        """``'name' (dist version)`` or ``'builtin' (built-in)``, for messages."""
        if self.builtin:
            return f"{self.name!r} (built-in)"
        if self.distribution:
            return f"{self.name!r} ({self.distribution} {self.version or ''})".replace(" )", ")")
        return f"{self.name!r} (registered at run time)"


@dataclass(frozen=True)
class FailedPlugin:
    """A plugin that was skipped, and why."""

    name: str
    reason: str
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None


class Manager(pluggy.PluginManager):
    """A PluginManager that counts changes, so the op registry can follow them."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.version = 0
        self.infos: dict[str, PluginInfo] = {}
        self.failed: list[FailedPlugin] = []
        self.unloaded: list[tuple[PluginInfo, md.EntryPoint]] = []

    def register(self, plugin: object, name: str | None = None) -> str | None:
        result = super().register(plugin, name)
        self.version += 1
        return result

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        result = super().unregister(plugin, name)
        self.version += 1
        return result


class Hooks:
    """Typed facade over ``pm.hook``: the only place its ``Any`` results are handled."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm

    def register_ops(self) -> Iterator[tuple[str, object]]:
        """Yield (plugin name, raw hook result) for every plugin implementing the hook."""
        caller = self._pm.hook.autodag_register_ops
        # Call each implementation alone so that every op is credited to its plugin.
        for impl in caller.get_hookimpls():
            try:
                result: object = impl.function()
            except Exception as exc:
                # Typically an OpDef that failed validation: one plugin's fault, not ours.
                result = exc
            yield impl.plugin_name, result


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _strict() -> bool:
    return _env_flag(ENV_STRICT)


def report(failure: FailedPlugin, pm: Manager) -> None:
    """Record a skipped plugin and warn (or raise, in strict mode)."""
    where = f" from entry point {failure.entry_point!r}" if failure.entry_point else ""
    dist = f" of {failure.distribution}" if failure.distribution else ""
    text = f"autodag plugin {failure.name!r}{dist}{where} was skipped: {failure.reason}"
    if _strict():
        raise PluginLoadError(text)
    pm.failed.append(failure)
    warnings.warn(text, PluginWarning, stacklevel=4)


def _entry_point_info(ep: md.EntryPoint) -> PluginInfo:
    dist = getattr(ep, "dist", None)
    return PluginInfo(
        name=ep.name,
        distribution=dist.metadata["Name"] if dist is not None else None,
        version=dist.version if dist is not None else None,
        entry_point=f"{ep.name} = {ep.value}",
    )


def _allowed(info: PluginInfo) -> bool:
    """Whether the environment lets an entry point load (checked before import).

    ``AUTODAG_LOAD_PLUGINS`` may name the plugin (``math``) or its distribution
    (``autodag-math``).
    """
    if _env_flag(ENV_DISABLE_AUTOLOAD):
        return False
    only = os.environ.get(ENV_LOAD_ONLY)
    if only is None:
        return True
    wanted = {n.strip() for n in only.split(",") if n.strip()}
    return info.name in wanted or info.distribution in wanted


def _load_entry_points(pm: Manager) -> None:
    seen: set[str] = set()
    dists: set[str] = set()
    # Sorted, so that plugins (and any conflict between them) come out the same every run.
    import importlib.metadata as md

    for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in seen:  # the same distribution seen twice on sys.path
            continue
        seen.add(ep.name)
        info = _entry_point_info(ep)
        if info.distribution:
            dists.add(info.distribution)
        if not _allowed(info):
            pm.unloaded.append((info, ep))
            continue
        if pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
            continue
        step = "import"
        try:
            plugin = ep.load()
            step = "registration"
            pm.register(plugin, name=ep.name)
        except Exception as exc:
            report(
                FailedPlugin(
                    ep.name, f"{step} failed: {type(exc).__name__}: {exc}",
                    info.distribution, info.version, info.entry_point,
                ),
                pm,
            )
            continue
        pm.infos[ep.name] = info
    only = os.environ.get(ENV_LOAD_ONLY)
    unknown = sorted({n.strip() for n in (only or "").split(",") if n.strip()} - seen - dists)
    if unknown and not _env_flag(ENV_DISABLE_AUTOLOAD):
        # A misspelt name would otherwise just make ops go missing.
        warnings.warn(
            f"{ENV_LOAD_ONLY} names {', '.join(map(repr, unknown))}, but no installed "
            f"plugin has that name; installed: {', '.join(sorted(seen)) or 'none'}",
            PluginWarning, stacklevel=5,
        )


def build_manager() -> Manager:
    """A plugin manager with the built-in plugin and the entry points the environment allows."""
    pm = Manager()
    pm.add_hookspecs(hookspecs)
    pm.register(builtin, name=BUILTIN_NAME)
    pm.infos[BUILTIN_NAME] = PluginInfo(BUILTIN_NAME)
    _load_entry_points(pm)
    while True:
        try:
            pm.check_pending()
            break
        except pluggy.PluginValidationError as exc:
            # A misspelt hook name: the plugin would silently contribute nothing.
            name = pm.get_name(exc.plugin) or repr(exc.plugin)
            info = pm.infos.pop(name, PluginInfo(name))
            pm.unregister(exc.plugin)
            report(
                FailedPlugin(name, f"unknown hook: {exc}", info.distribution, info.version,
                             info.entry_point),
                pm,
            )
    return pm


def collect_ops(name: str, result: object) -> list[OpDef]:
    """The op definitions of one hook result, or PluginLoadError naming what is wrong."""
    if result is None:
        return []
    if isinstance(result, Exception):
        raise PluginLoadError(
            f"autodag_register_ops raised {type(result).__name__}: {result}"
        ) from result
    if isinstance(result, OpDef):
        return [result]
    if isinstance(result, (str, bytes, Mapping)) or not isinstance(result, Iterable):
        raise PluginLoadError(
            f"autodag_register_ops returned {type(result).__name__}, "
            "expected an iterable of OpDef"
        )
    ops = list(result)
    bad = [o for o in ops if not isinstance(o, OpDef)]
    if bad:
        raise PluginLoadError(
            f"autodag_register_ops returned {len(bad)} item(s) that are not OpDef, "
            f"first: {bad[0]!r}"
        )
    return ops


def peek_ops(ep: md.EntryPoint) -> list[str]:
    """Op names an unloaded plugin would provide (for 'which package provides X')."""
    try:
        plugin = ep.load()
        fn = getattr(plugin, "autodag_register_ops", None)
        if fn is None:
            return []
        return [op.name for op in collect_ops(ep.name, fn())]
    except Exception:
        return []
