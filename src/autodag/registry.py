"""The op registry built from the loaded plugins, and the plugins of the process.

The plugin manager (``autodag.plugins``) is built on first use, never at import, and
kept here with the registry snapshot made from it: ``get_registry`` rebuilds the snapshot
whenever plugins were registered or unregistered. An op two plugins define goes to the
single one that declares ``override=True``, or is a ``PluginConflictError``. The names
of the environment settings (``ENV_STRICT``...) are re-exported from ``autodag.plugins``.
"""

from __future__ import annotations

import difflib
import functools
import threading
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import importlib.metadata as md

from .errors import (
    OpConflictError,
    OpNotFoundError,
    PluginConflictError,
    PluginLoadError,
    PluginWarning,
)
from .hooktables import TABLE_SPECS, HookTable, TableSpec, build_table, table_entries
from .namespace import NumericNamespace
from .opdef import OpDef
from .plugins import BUILTIN_NAME as BUILTIN_NAME
from .plugins import (
    ENTRY_POINT_GROUP,
    FailedPlugin,
    Hooks,
    Manager,
    PluginInfo,
    build_manager,
    collect_ops,
    mentions_op,
    report,
    strict,
    unknown_hook_reason,
)
from .plugins import ENV_DISABLE_AUTOLOAD as ENV_DISABLE_AUTOLOAD
from .plugins import ENV_LOAD_ONLY as ENV_LOAD_ONLY
from .plugins import ENV_STRICT as ENV_STRICT
from .sites import user_stacklevel

__all__ = [
    "ENTRY_POINT_GROUP",
    "Conflict",
    "FailedPlugin",
    "PluginInfo",
    "RegisteredOp",
    "Registry",
    "get_plugin_manager",
    "get_registry",
    "get_table",
    "register_plugin",
    "reset_plugins",
    "unregister_plugin",
]

@dataclass(frozen=True)
class RegisteredOp:
    """An op definition credited to the plugin that supplied it."""

    opdef: OpDef
    plugin: PluginInfo
    #: Ops of the same name this one replaced through ``override=True``.
    overrides: tuple[PluginInfo, ...] = ()


@dataclass(frozen=True)
class Conflict:
    """An op that several plugins define and none overrides: left out until resolved."""

    op: str
    providers: tuple[PluginInfo, ...]
    #: Why it is unresolved: nobody overrides, or more than one does.
    hint: str

    def describe(self) -> str:
        """One sentence naming the op, both providers and how to resolve it."""
        who = " and ".join(p.describe() for p in self.providers)
        dists = [p.distribution for p in self.providers if p.distribution]
        fix = f"uninstall one of {', '.join(dists)}, or " if len(dists) > 1 else ""
        return (f"op {self.op!r} is defined by plugins {who}; {self.hint}. It is left out "
                f"until resolved: {fix}set override=True on exactly one definition")


@dataclass
class Registry:
    """Snapshot of every op the loaded plugins provide."""

    ops: dict[str, RegisteredOp] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    failed: list[FailedPlugin] = field(default_factory=list)
    #: Installed plugins that settings kept from loading; looked into only on a miss.
    unloaded: list[tuple[PluginInfo, md.EntryPoint]] = field(default_factory=list)
    #: Ops left out because several plugins define them (see ``Conflict``).
    conflicts: dict[str, Conflict] = field(default_factory=dict)
    #: What layers above derive from this snapshot once (the compiler's templates).
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @functools.cached_property
    def numeric(self) -> NumericNamespace:
        """The ``xp`` handed to backward rules when differentiating numbers."""
        return NumericNamespace(self)

    def numeric_for(self, backend: Any) -> NumericNamespace:
        """The ``xp`` of backward rules for a run on another array namespace (one each)."""
        key = f"numeric:{id(backend)}"
        ns = self.derived.get(key)
        if ns is None:
            ns = self.derived[key] = NumericNamespace(self, backend)
        assert isinstance(ns, NumericNamespace)
        return ns

    def get(self, name: str) -> RegisteredOp:
        """The op called ``name``, or an error naming close matches and providers."""
        try:
            return self.ops[name]
        except KeyError:
            if name in self.conflicts:
                raise OpConflictError(self.conflicts[name].describe()) from None
            raise OpNotFoundError(self._missing_message(name)) from None

    def __contains__(self, name: object) -> bool:
        return name in self.ops

    def _missing_message(self, name: str) -> str:
        msg = f"no op named {name!r} is registered"
        # Plugins left out are never imported: their sources are only read for the name.
        providers = [info for info, ep in self.unloaded if mentions_op(ep, name)]
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
        elif self.unloaded:
            who = ", ".join(info.describe() for info, _ in self.unloaded)
            msg += (f"; no loaded plugin provides it, and these installed plugins are not "
                    f"loaded: {who} (check {ENV_DISABLE_AUTOLOAD} and {ENV_LOAD_ONLY})")
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


_lock = threading.RLock()
_manager: Manager | None = None
_registry: Registry | None = None
_registry_version = -1


def get_plugin_manager() -> pluggy.PluginManager:
    """The plugin manager, built (and entry points loaded) on first use."""
    return _get_manager()


def _get_manager() -> Manager:
    global _manager
    if _manager is None:
        with _lock:
            if _manager is None:
                _manager = build_manager()
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
                collect_ops(registered, result)
            _check_tables(plugin)
        except pluggy.PluginValidationError as exc:
            raise PluginLoadError(
                f"plugin {registered!r} was not registered: {unknown_hook_reason(exc)}"
            ) from exc
        except PluginLoadError as exc:
            raise PluginLoadError(f"plugin {registered!r} was not registered: {exc}") from exc
        clashes = [c for c in _refresh(pm).conflicts.values()
                   if any(p.name == registered for p in c.providers)]
        if clashes:
            raise PluginConflictError(
                f"plugin {registered!r} was not registered: {clashes[0].describe()}")
        _check_table_conflicts(pm, registered)
    except Exception:
        # Leave everything usable: a malformed or conflicting plugin is taken back out.
        pm.unregister(plugin)
        pm.infos.pop(registered, None)
        raise
    return registered


def _check_tables(plugin: object) -> None:
    """PluginLoadError when a plugin registered at run time fills a table hook wrongly."""
    for spec in TABLE_SPECS:
        fn = getattr(plugin, spec.hook, None)
        if fn is not None:
            try:
                result: object = fn()
            except Exception as exc:
                result = exc
            table_entries(spec, result)


def _check_table_conflicts(pm: Manager, registered: str) -> None:
    """PluginConflictError when a plugin registered at run time clashes in a table."""
    for spec in TABLE_SPECS:
        table = build_table(pm, spec, _registered(pm), quiet=True)
        for c in table.conflicts.values():
            if any(p.name == registered for p in c.providers):
                raise PluginConflictError(
                    f"plugin {registered!r} was not registered: {c.describe()}")


def _registered(pm: Manager) -> dict[str, PluginInfo]:
    """Every registered plugin (those the op registry skipped are unregistered)."""
    return {name: _info_for(pm, name) for name, _ in pm.list_name_plugin()}


def get_table(spec: TableSpec) -> HookTable:
    """The table of a table hook (``hooktables.ONNX_CONVERTERS``...) from the loaded
    plugins, rebuilt with the op registry."""
    reg = get_registry()
    key = f"table:{spec.hook}"
    table = reg.derived.get(key)
    if not isinstance(table, HookTable):
        with _lock:
            table = build_table(_get_manager(), spec, _registered(_get_manager()))
        reg.derived[key] = table
    return table


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
    pm = _get_manager()
    reg = _registry
    if reg is not None and _registry_version == pm.version:
        return reg
    return _refresh(pm, quiet=False)


def _refresh(pm: Manager, quiet: bool = True) -> Registry:
    global _registry, _registry_version
    with _lock:
        if _registry is None or _registry_version != pm.version:
            # A plugin registered at run time is refused on conflict, not warned about.
            _registry = _build_registry(pm, quiet)
            _registry_version = pm.version
        return _registry


def _info_for(pm: Manager, name: str) -> PluginInfo:
    return pm.infos.get(name) or PluginInfo(name)


def _build_registry(pm: Manager, quiet: bool = False) -> Registry:
    reg = Registry(failed=list(pm.failed))
    claims: dict[str, list[tuple[OpDef, PluginInfo]]] = {}
    skipped: list[str] = []
    for plugin_name, result in Hooks(pm).register_ops():
        info = _info_for(pm, plugin_name)
        try:
            ops = collect_ops(plugin_name, result)
        except Exception as exc:
            failure = FailedPlugin(plugin_name, f"malformed op definitions: {exc}",
                                   info.distribution, info.version, info.entry_point)
            if plugin_name == BUILTIN_NAME:
                raise
            report(failure, pm)
            reg.failed.append(failure)
            skipped.append(plugin_name)
            continue
        reg.plugins.append(info)
        for op in ops:
            claims.setdefault(op.name, []).append((op, info))
    for name in skipped:  # so that later rebuilds do not warn about it again
        pm.unregister(name=name)
        pm.infos.pop(name, None)
    for op_name, providers in claims.items():
        resolved = _resolve(op_name, providers)
        if isinstance(resolved, Conflict):
            reg.conflicts[op_name] = resolved
        else:
            reg.ops[op_name] = resolved
    reg.unloaded = list(pm.unloaded)
    if not quiet:
        _warn_conflicts(pm, reg)
    return reg


def _warn_conflicts(pm: Manager, reg: Registry) -> None:
    """Tell about each new conflict once (in strict mode: raise)."""
    for conflict in reg.conflicts.values():
        if strict():
            raise PluginConflictError(conflict.describe())
        key = (conflict.op, *(p.name for p in conflict.providers))
        if key not in pm.warned:
            pm.warned.add(key)
            warnings.warn(conflict.describe(), PluginWarning, stacklevel=user_stacklevel())


def _resolve(op_name: str, providers: list[tuple[OpDef, PluginInfo]]) -> RegisteredOp | Conflict:
    """Pick the provider of an op: the only one, or the single one that overrides."""
    if len(providers) == 1:
        op, info = providers[0]
        return RegisteredOp(op, info)
    overriding = [(op, info) for op, info in providers if op.override]
    if len(overriding) == 1:
        op, info = overriding[0]
        others = tuple(i for o, i in providers if o is not op)
        return RegisteredOp(op, info, others)
    hint = "more than one declares override=True" if overriding else "none declares override=True"
    return Conflict(op_name, tuple(info for _, info in providers), hint)
