"""The ``autodag plugins`` command: loaded plugins, their ops and hook tables, conflicts."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any, TextIO

from .errors import AutodagError, PluginWarning
from .hooktables import TABLE_SPECS, HookTable
from .registry import (
    PluginInfo,
    Registry,
    get_registry,
    get_table,
)

__all__ = ["load_registry", "plugins_command", "print_conflicts"]


def load_registry(err: TextIO) -> Registry | None:
    """The registry, with plugin warnings printed to ``err``; None (printed) on an error."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PluginWarning)
            reg = get_registry()
            # Table hooks warn while built: here, so that the report says it instead.
            reported = [m for t in map(get_table, TABLE_SPECS) for m in _table_messages(t)]
    except AutodagError as exc:
        print(f"autodag: {exc}", file=err)
        return None
    for w in caught:
        if any(m in str(w.message) for m in reported):
            continue
        if not issubclass(w.category, PluginWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        # Failed plugins are part of the report; other warnings (a misspelt name in
        # AUTODAG_LOAD_PLUGINS) would otherwise go unseen.
        elif not any(f.name in str(w.message) and f.reason in str(w.message)
                     for f in reg.failed) and not any(
                         str(w.message) == c.describe() for c in reg.conflicts.values()):
            print(f"autodag: warning: {w.message}", file=err)
    return reg


def _table_messages(table: HookTable) -> list[str]:
    return [f.reason for f in table.failed] + [c.describe() for c in table.conflicts.values()]


def _tables_data(reg: Registry) -> dict[str, Any]:
    """Each table hook's conflicts and skipped plugins, keyed by the table's name."""
    out: dict[str, Any] = {}
    for spec in TABLE_SPECS:
        table = get_table(spec)
        out[f"{spec.key}_conflicts"] = [
            {"op": c.key, "reason": c.describe(), "providers": [p.name for p in c.providers]}
            for c in table.conflicts.values()]
        out[f"{spec.key}_failed"] = [{"name": f.name, "reason": f.reason}
                                     for f in table.failed]
    return out


def _print_tables(reg: Registry, data: dict[str, Any], out: TextIO) -> None:
    for spec in TABLE_SPECS:
        if data[f"{spec.key}_conflicts"]:
            print(f"\n{spec.what} conflicts (left out until resolved):", file=out)
            for c in data[f"{spec.key}_conflicts"]:
                print(f"  {c['op']}: {c['reason']}", file=out)
        if data[f"{spec.key}_failed"]:
            print(f"\n{spec.what}s skipped:", file=out)
            for f in data[f"{spec.key}_failed"]:
                print(f"  {f['name']}: {f['reason']}", file=out)


def _listed(reg: Registry) -> list[PluginInfo]:
    """The plugins with ops, then those that fill only a table hook (converters only)."""
    out = list(reg.plugins)
    for spec in TABLE_SPECS:
        for provided in get_table(spec).items.values():
            if all(p.name != provided.plugin.name for p in out):
                out.append(provided.plugin)
    return out


def _where(info: PluginInfo) -> str:
    if info.builtin:
        return "built-in"
    if info.distribution:
        return f"{info.distribution} {info.version or ''}".strip()
    return "registered at run time"


def _plugins_data(reg: Registry) -> dict[str, Any]:
    ops = reg.by_plugin()
    items = {spec.key: get_table(spec).by_plugin() for spec in TABLE_SPECS}
    return {
        "plugins": [
            {
                "name": p.name, "distribution": p.distribution, "version": p.version,
                "builtin": p.builtin, "entry_point": p.entry_point,
                "ops": ops.get(p.name, []),
                **{key: by_plugin.get(p.name, []) for key, by_plugin in items.items()},
                "overrides": {
                    name: [o.name for o in r.overrides]
                    for name, r in sorted(reg.ops.items())
                    if r.plugin.name == p.name and r.overrides
                },
            }
            for p in _listed(reg)
        ],
        "failed": [
            {"name": f.name, "distribution": f.distribution, "version": f.version,
             "entry_point": f.entry_point, "reason": f.reason}
            for f in reg.failed
        ],
        "not_loaded": [
            {"name": info.name, "distribution": info.distribution, "version": info.version,
             "entry_point": info.entry_point}
            for info, _ in reg.unloaded
        ],
        "conflicts": [
            {"op": c.op, "reason": c.describe(),
             "providers": [
                 {"name": p.name, "distribution": p.distribution, "version": p.version,
                  "entry_point": p.entry_point}
                 for p in c.providers
             ]}
            for c in reg.conflicts.values()
        ],
        **_tables_data(reg),
    }


def print_conflicts(reg: Registry, out: TextIO) -> None:
    for c in reg.conflicts.values():
        who = " and ".join(f"{p.name} ({_where(p)})" for p in c.providers)
        print(f"  {c.op}: defined by {who}", file=out)
        # describe()'s first sentence repeats the line above; the second says the fix.
        print(f"    {c.describe().split('. ', 1)[-1]}", file=out)


def plugins_command(args: argparse.Namespace, out: TextIO | None = None,
                    err: TextIO | None = None) -> int:
    """``autodag plugins [--json]``: print the plugins, their ops, and failures."""
    out = out or sys.stdout
    reg = load_registry(err or sys.stderr)
    if reg is None:
        return 1
    data = _plugins_data(reg)
    if args.json:
        json.dump(data, out, indent=2)
        out.write("\n")
        return 0
    for p, info in zip(data["plugins"], _listed(reg), strict=True):
        print(f"{p['name']} ({_where(info)})", file=out)
        print(f"  ops: {', '.join(p['ops']) or '(none)'}", file=out)
        for spec in TABLE_SPECS:
            if p[spec.key]:
                print(f"  {spec.what}s: {len(p[spec.key])}", file=out)
        for op, replaced in p["overrides"].items():
            print(f"  {op} overrides plugin(s) {', '.join(replaced)}", file=out)
    if reg.conflicts:
        print("\nconflicts (these ops are left out until resolved):", file=out)
        print_conflicts(reg, out)
    _print_tables(reg, data, out)
    if data["failed"]:
        print("\nfailed to load:", file=out)
        for f in reg.failed:
            dist = f" ({f.distribution} {f.version or ''})".replace(" )", ")") \
                if f.distribution else ""
            print(f"  {f.name}{dist}: {f.reason}", file=out)
    if data["not_loaded"]:
        print("\ninstalled but not loaded (AUTODAG_DISABLE_PLUGIN_AUTOLOAD or "
              "AUTODAG_LOAD_PLUGINS):", file=out)
        for info, _ in reg.unloaded:
            print(f"  {info.name} ({_where(info)})", file=out)
    return 0
