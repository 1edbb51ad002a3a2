"""The plugin manager and the op registry built from it.

The plugin manager is built on first use, never at import. Entry points of the
``autodag`` group are loaded one by one so that a broken plugin is reported and
skipped instead of taking the library down. ``_Hooks`` is the only code that touches
pluggy's untyped ``pm.hook``.
"""

from __future__ import annotations

import difflib
import functools
import os
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import pluggy

if TYPE_CHECKING:
    # importlib.metadata costs tens of milliseconds: imported when plugins load, not here.
    import importlib.metadata as md

from . import builtin, hookspecs
from .errors import OpNotFoundError, PluginConflictError, PluginLoadError, PluginWarning
from .namespace import NumericNamespace
from .opdef import OpDef

__all__ = [
    "ENTRY_POINT_GROUP",
    "FailedPlugin",
    "PluginInfo",
    "RegisteredOp",
    "Registry",
    "get_plugin_manager",
    "get_registry",
    "register_plugin",
    "reset_plugins",
    "unregister_plugin",
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


@dataclass(frozen=True)
class RegisteredOp:
    """An op definition credited to the plugin that supplied it."""

    opdef: OpDef
    plugin: PluginInfo
    #: Ops of the same name this one replaced through ``override=True``.
    overrides: tuple[PluginInfo, ...] = ()


@dataclass
class Registry:
    """Snapshot of every op the loaded plugins provide."""

    ops: dict[str, RegisteredOp] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    failed: list[FailedPlugin] = field(default_factory=list)
    #: Installed plugins that settings kept from loading; looked into only on a miss.
    unloaded: list[tuple[PluginInfo, md.EntryPoint]] = field(default_factory=list)

    @functools.cached_property
    def numeric(self) -> NumericNamespace:
        """The ``xp`` handed to backward rules when differentiating numbers."""
        return NumericNamespace(self)

    def get(self, name: str) -> RegisteredOp:
        """The op called ``name``, or an error naming close matches and providers."""
        try:
            return self.ops[name]
        except KeyError:
            raise OpNotFoundError(self._missing_message(name)) from None

    def __contains__(self, name: object) -> bool:
        return name in self.ops

    def _missing_message(self, name: str) -> str:
        msg = f"no op named {name!r} is registered"
        # Importing a blocked plugin is a last resort, done only to explain a miss.
        providers = [info for info, ep in self.unloaded if name in _peek_ops(ep)]
        if providers:
            who = ", ".join(p.describe() for p in providers)
            msg += (
                f"; it is provided by installed plugin {who}, which is not loaded "
                f"(check {ENV_DISABLE_AUTOLOAD} and {ENV_LOAD_ONLY})"
            )
        elif self.failed:
            who = "; ".join(
                f"{f.name!r}" + (f" ({f.distribution})" if f.distribution else "")
                + f": {f.reason}"
                for f in self.failed
            )
            msg += f"; no loaded plugin provides it, and these plugins failed to load: {who}"
        else:
            msg += "; no installed plugin provides it"
        close = difflib.get_close_matches(name, list(self.ops), n=5, cutoff=0.6)
        if close:
            msg += f". Did you mean: {', '.join(close)}?"
        return msg

    def by_plugin(self) -> dict[str, list[str]]:
        """Op names grouped by the name of the plugin providing them."""
        out: dict[str, list[str]] = {p.name: [] for p in self.plugins}
        for op_name, reg in sorted(self.ops.items()):
            out.setdefault(reg.plugin.name, []).append(op_name)
        return out


class _Manager(pluggy.PluginManager):
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


class _Hooks:
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


_lock = threading.RLock()
_manager: _Manager | None = None
_registry: Registry | None = None
_registry_version = -1


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _strict() -> bool:
    return _env_flag(ENV_STRICT)


def _report(failure: FailedPlugin, pm: _Manager) -> None:
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


def _load_entry_points(pm: _Manager) -> None:
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
        try:
            plugin = ep.load()
        except Exception as exc:
            _report(
                FailedPlugin(
                    ep.name, f"import failed: {type(exc).__name__}: {exc}",
                    info.distribution, info.version, info.entry_point,
                ),
                pm,
            )
            continue
        try:
            pm.register(plugin, name=ep.name)
        except Exception as exc:
            _report(
                FailedPlugin(
                    ep.name, f"registration failed: {type(exc).__name__}: {exc}",
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


def _build_manager() -> _Manager:
    pm = _Manager()
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
            _report(
                FailedPlugin(name, f"unknown hook: {exc}", info.distribution, info.version,
                             info.entry_point),
                pm,
            )
    return pm


def get_plugin_manager() -> pluggy.PluginManager:
    """The plugin manager, built (and entry points loaded) on first use."""
    return _get_manager()


def _get_manager() -> _Manager:
    global _manager
    if _manager is None:
        with _lock:
            if _manager is None:
                _manager = _build_manager()
    return _manager


def reset_plugins() -> None:
    """Forget the plugin manager; the next use rebuilds it from the environment."""
    global _manager, _registry, _registry_version
    with _lock:
        _manager = None
        _registry = None
        _registry_version = -1


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a plugin module or object at run time; its ops become available."""
    pm = _get_manager()
    registered = pm.register(plugin, name=name)
    if registered is None:
        raise PluginLoadError(f"plugin {name or plugin!r} is blocked and was not registered")
    pm.infos.setdefault(registered, PluginInfo(registered))
    try:
        try:
            pm.check_pending()
            fn = getattr(plugin, "autodag_register_ops", None)
            if fn is not None:
                try:
                    result: object = fn()
                except Exception as exc:
                    result = exc
                _collect(registered, result)
        except (pluggy.PluginValidationError, PluginLoadError) as exc:
            raise PluginLoadError(f"plugin {registered!r} was not registered: {exc}") from exc
        get_registry()
    except Exception:
        # Leave everything usable: a malformed or conflicting plugin is taken back out.
        pm.unregister(plugin)
        pm.infos.pop(registered, None)
        raise
    return registered


def unregister_plugin(plugin_or_name: object) -> None:
    """Unregister a plugin (the object, or its name); its ops disappear."""
    pm = _get_manager()
    if isinstance(plugin_or_name, str):
        if pm.get_plugin(plugin_or_name) is None:
            raise PluginLoadError(f"no plugin named {plugin_or_name!r} is registered")
        pm.unregister(name=plugin_or_name)
        pm.infos.pop(plugin_or_name, None)
    else:
        name = pm.get_name(plugin_or_name)
        if name is None:
            raise PluginLoadError(f"plugin {plugin_or_name!r} is not registered")
        pm.unregister(plugin_or_name)
        pm.infos.pop(name, None)


def get_registry() -> Registry:
    """The op registry, rebuilt whenever plugins were registered or unregistered."""
    global _registry, _registry_version
    pm = _get_manager()
    reg = _registry
    if reg is not None and _registry_version == pm.version:
        return reg
    with _lock:
        if _registry is None or _registry_version != pm.version:
            _registry = _build_registry(pm)
            _registry_version = pm.version
        return _registry


def _info_for(pm: _Manager, name: str) -> PluginInfo:
    return pm.infos.get(name) or PluginInfo(name)


def _collect(name: str, result: object) -> list[OpDef]:
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


def _build_registry(pm: _Manager) -> Registry:
    reg = Registry(failed=list(pm.failed))
    claims: dict[str, list[tuple[OpDef, PluginInfo]]] = {}
    skipped: list[str] = []
    for plugin_name, result in _Hooks(pm).register_ops():
        info = _info_for(pm, plugin_name)
        try:
            ops = _collect(plugin_name, result)
        except Exception as exc:
            failure = FailedPlugin(plugin_name, f"malformed op definitions: {exc}",
                                   info.distribution, info.version, info.entry_point)
            if plugin_name == BUILTIN_NAME:
                raise
            _report(failure, pm)
            reg.failed.append(failure)
            skipped.append(plugin_name)
            continue
        reg.plugins.append(info)
        names_here: set[str] = set()
        for op in ops:
            if op.name in names_here:
                raise PluginConflictError(
                    f"plugin {info.describe()} defines op {op.name!r} twice"
                )
            names_here.add(op.name)
            claims.setdefault(op.name, []).append((op, info))
    for name in skipped:  # so that later rebuilds do not warn about it again
        pm.unregister(name=name)
        pm.infos.pop(name, None)
    for op_name, providers in claims.items():
        reg.ops[op_name] = _resolve(op_name, providers)
    reg.unloaded = list(pm.unloaded)
    return reg


def _resolve(op_name: str, providers: list[tuple[OpDef, PluginInfo]]) -> RegisteredOp:
    """Pick the provider of an op: the only one, or the single one that overrides."""
    if len(providers) == 1:
        op, info = providers[0]
        return RegisteredOp(op, info)
    overriding = [(op, info) for op, info in providers if op.override]
    if len(overriding) == 1:
        op, info = overriding[0]
        others = tuple(i for o, i in providers if o is not op)
        return RegisteredOp(op, info, others)
    who = " and ".join(info.describe() for _, info in providers)
    hint = (
        "more than one declares override=True"
        if overriding
        else "set override=True on one definition to replace the other"
    )
    raise PluginConflictError(f"op {op_name!r} is defined by plugins {who}; {hint}")


def _peek_ops(ep: md.EntryPoint) -> list[str]:
    """Op names an unloaded plugin would provide (for 'which package provides X')."""
    try:
        plugin = ep.load()
        fn = getattr(plugin, "autodag_register_ops", None)
        if fn is None:
            return []
        return [op.name for op in _collect(ep.name, fn())]
    except Exception:
        return []
