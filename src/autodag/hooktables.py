"""Tables that plugins fill through a hook: name -> item, with the op registry's rules.

A table hook (``autodag_onnx_converters``...) returns a mapping of op name to item. Its
tables follow the rules of op registration: each implementation is called alone, so
every item is credited to its plugin; a plugin whose hook raises or returns something
malformed has its items skipped with a ``PluginWarning`` naming the reason (in strict
mode: ``PluginLoadError``) while the others keep working; a name two plugins give is
left out as a ``TableConflict`` unless exactly one wraps its item in ``Override``.
``TABLE_SPECS`` lists the table hooks, so that run-time registration and
``autodag plugins`` treat each alike.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .errors import PluginConflictError, PluginLoadError, PluginWarning
from .kernelform import KernelForm
from .plugins import FailedPlugin, Hooks, Manager, PluginInfo, strict
from .rewrite import Rewrite
from .sites import user_stacklevel

__all__ = [
    "KERNEL_FORMS",
    "ONNX_CONVERTERS",
    "REWRITES",
    "TABLE_SPECS",
    "HookTable",
    "Override",
    "Provided",
    "TableConflict",
    "TableSpec",
    "build_table",
    "table_entries",
]


@dataclass(frozen=True)
class Override:
    """A table item that deliberately replaces another plugin's item of the same name."""

    item: Any


@dataclass(frozen=True)
class TableSpec:
    """One table hook: its name, what an item is, and the check of one item."""

    hook: str
    #: What an item is called in messages ("ONNX converter").
    what: str
    #: The key of the table in ``autodag plugins --json`` ("onnx_converters").
    key: str
    #: Why an item is malformed, or None when it is fine.
    check: Callable[[object], str | None]
    #: How to resolve a conflict.
    fix: str
    #: What the table's keys name, in messages ("op 'add'", "rewrite 'cse'").
    key_word: str = "op"


@dataclass(frozen=True)
class Provided:
    """A table item credited to the plugin that supplied it."""

    item: Any
    plugin: PluginInfo
    #: Plugins whose item of the same name this one replaced through ``Override``.
    overrides: tuple[PluginInfo, ...] = ()


@dataclass(frozen=True)
class TableConflict:
    """A name several plugins give an item for and none (or several) override."""

    key: str
    spec: TableSpec
    providers: tuple[PluginInfo, ...]
    hint: str

    def describe(self) -> str:
        """One sentence naming the op, the providers and how to resolve it."""
        who = " and ".join(p.describe() for p in self.providers)
        dists = [p.distribution for p in self.providers if p.distribution]
        uninstall = f"uninstall one of {', '.join(dists)}, or " if len(dists) > 1 else ""
        return (f"the {self.spec.what} of {self.spec.key_word} {self.key!r} is given by "
                f"plugins {who}; "
                f"{self.hint}. It is left out until resolved: {uninstall}{self.spec.fix}")


@dataclass
class HookTable:
    """What one table hook collected from the loaded plugins."""

    spec: TableSpec
    items: dict[str, Provided] = field(default_factory=dict)
    conflicts: dict[str, TableConflict] = field(default_factory=dict)
    #: Plugins whose items were skipped, and why.
    failed: list[FailedPlugin] = field(default_factory=list)

    def by_plugin(self) -> dict[str, list[str]]:
        """Item names grouped by the name of the plugin providing them."""
        out: dict[str, list[str]] = {}
        for name, provided in sorted(self.items.items()):
            out.setdefault(provided.plugin.name, []).append(name)
        return out


def _callable(item: object) -> str | None:
    return None if callable(item) else f"{type(item).__name__} {item!r} is not callable"


ONNX_CONVERTERS: Final = TableSpec(
    hook="autodag_onnx_converters", what="ONNX converter", key="onnx_converters",
    check=_callable, fix="wrap exactly one of them in autodag.onnx.Override",
)


def _instance_of(cls: type) -> Callable[[object], str | None]:
    """The check that an item is an ``autodag.<cls>``."""

    def check(item: object) -> str | None:
        return None if isinstance(item, cls) else (
            f"{type(item).__name__} {item!r} is not an autodag.{cls.__name__}")

    return check


REWRITES: Final = TableSpec(
    hook="autodag_rewrites", what="rewrite", key="rewrites", check=_instance_of(Rewrite),
    fix="wrap exactly one of them in autodag.hooktables.Override, or rename one",
    key_word="rewrite",
)
KERNEL_FORMS: Final = TableSpec(
    hook="autodag_kernel_forms", what="kernel form", key="kernel_forms",
    check=_instance_of(KernelForm), fix="wrap exactly one of them in autodag.hooktables.Override",
)
#: Every table hook: run-time registration checks each, ``autodag plugins`` lists each.
TABLE_SPECS: Final = (ONNX_CONVERTERS, REWRITES, KERNEL_FORMS)


def table_entries(spec: TableSpec, result: object) -> dict[str, tuple[Any, bool]]:
    """name -> (item, overrides) of one hook result, or PluginLoadError saying what is wrong."""
    if result is None:
        return {}
    if isinstance(result, Exception):
        raise PluginLoadError(f"{spec.hook} raised {type(result).__name__}: {result}") \
            from result
    if not isinstance(result, Mapping):
        raise PluginLoadError(f"{spec.hook} returned {type(result).__name__}, expected a "
                              f"mapping of {spec.key_word} name to {spec.what}")
    out: dict[str, tuple[Any, bool]] = {}
    for name, value in result.items():
        if not isinstance(name, str) or not name:
            raise PluginLoadError(f"{spec.hook} returned the key {name!r}, not a "
                                  f"{spec.key_word} name")
        overrides = isinstance(value, Override)
        item = value.item if isinstance(value, Override) else value
        why = spec.check(item)
        if why is not None:
            raise PluginLoadError(f"{spec.hook} gave a malformed {spec.what} for "
                                  f"{spec.key_word} {name!r}: {why}")
        out[name] = (item, overrides)
    return out


def _warn_once(pm: Manager, key: tuple[str, ...], message: str,
               error: type[Exception]) -> None:
    if strict():
        raise error(f"{message} (AUTODAG_STRICT_PLUGINS is set, so this is an error)")
    if key not in pm.warned:
        pm.warned.add(key)
        warnings.warn(message, PluginWarning, stacklevel=user_stacklevel())


def _resolve(spec: TableSpec, name: str,
             claims: list[tuple[Any, bool, PluginInfo]]) -> Provided | TableConflict:
    """The provider of an item: the only one, or the single one that overrides."""
    if len(claims) == 1:
        return Provided(claims[0][0], claims[0][2])
    overriding = [c for c in claims if c[1]]
    if len(overriding) == 1:
        item, _, info = overriding[0]
        return Provided(item, info, tuple(c[2] for c in claims if c is not overriding[0]))
    hint = ("more than one wraps it in Override" if overriding
            else "none wraps it in Override")
    return TableConflict(name, spec, tuple(c[2] for c in claims), hint)


def build_table(pm: Manager, spec: TableSpec, plugins: Mapping[str, PluginInfo],
                quiet: bool = False) -> HookTable:
    """The table of ``spec`` from the loaded ``plugins`` (name -> info), warning (unless
    ``quiet``) about each plugin skipped and each conflict once."""
    table = HookTable(spec)
    claims: dict[str, list[tuple[Any, bool, PluginInfo]]] = {}
    for name, result in Hooks(pm).call_each(spec.hook):
        info = plugins.get(name)
        if info is None:  # a plugin the op registry skipped
            continue
        try:
            entries = table_entries(spec, result)
        except PluginLoadError as exc:
            if info.builtin:
                raise
            table.failed.append(FailedPlugin(name, str(exc), info.distribution,
                                             info.version, info.entry_point))
            if not quiet:
                _warn_once(pm, (spec.hook, name), f"the {spec.what}s of autodag plugin "
                           f"{info.describe()} were skipped: {exc}", PluginLoadError)
            continue
        for key, (item, overrides) in entries.items():
            claims.setdefault(key, []).append((item, overrides, info))
    for key, found in sorted(claims.items()):
        resolved = _resolve(spec, key, found)
        if isinstance(resolved, TableConflict):
            table.conflicts[key] = resolved
            if not quiet:
                _warn_once(pm, (spec.hook, key, *(p.name for p in resolved.providers)),
                           resolved.describe(), PluginConflictError)
        else:
            table.items[key] = resolved
    return table
