"""The ``autodag plugins`` and ``autodag check`` commands."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any, TextIO

from .errors import AutodagError, PluginWarning
from .registry import PluginInfo, Registry, get_registry

__all__ = ["add_commands", "check_command", "plugins_command"]


def add_commands(subparsers: Any) -> None:
    """Add the ``plugins`` and ``check`` sub-commands to the ``autodag`` parser."""
    p = subparsers.add_parser(
        "plugins", help="list loaded plugins and their ops",
        description="List every loaded plugin (name, distribution and version), the ops "
                    "it provides, and plugins that failed to load or were not loaded.",
    )
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(func=plugins_command)
    c = subparsers.add_parser(
        "check", help="gradient-check the ops of plugins",
        description="Run autodag.testing.check_op on every op (with samples) of the named "
                    "plugins, or of all plugins; exit code 1 if any op fails.",
    )
    c.add_argument("plugin", nargs="*", metavar="PLUGIN",
                   help="plugin or distribution names (default: all)")
    c.add_argument("-v", "--verbose", action="store_true", help="print every failure in full")
    c.set_defaults(func=check_command)


def _registry(err: TextIO) -> Registry | None:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PluginWarning)
            reg = get_registry()
    except AutodagError as exc:
        print(f"autodag: {exc}", file=err)
        return None
    for w in caught:
        if not issubclass(w.category, PluginWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        # Failed plugins are part of the report; other warnings (a misspelt name in
        # AUTODAG_LOAD_PLUGINS) would otherwise go unseen.
        elif not any(f.name in str(w.message) and f.reason in str(w.message)
                     for f in reg.failed):
            print(f"autodag: warning: {w.message}", file=err)
    return reg


def _where(info: PluginInfo) -> str:
    if info.builtin:
        return "built-in"
    if info.distribution:
        return f"{info.distribution} {info.version or ''}".strip()
    return "registered at run time"


def _plugins_data(reg: Registry) -> dict[str, Any]:
    ops = reg.by_plugin()
    return {
        "plugins": [
            {
                "name": p.name, "distribution": p.distribution, "version": p.version,
                "builtin": p.builtin, "entry_point": p.entry_point,
                "ops": ops.get(p.name, []),
                "overrides": {
                    name: [o.name for o in r.overrides]
                    for name, r in sorted(reg.ops.items())
                    if r.plugin.name == p.name and r.overrides
                },
            }
            for p in reg.plugins
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
    }


def plugins_command(args: argparse.Namespace, out: TextIO | None = None,
                    err: TextIO | None = None) -> int:
    """``autodag plugins [--json]``: print the plugins, their ops, and failures."""
    out = out or sys.stdout
    reg = _registry(err or sys.stderr)
    if reg is None:
        return 1
    data = _plugins_data(reg)
    if args.json:
        json.dump(data, out, indent=2)
        out.write("\n")
        return 0
    for p, info in zip(data["plugins"], reg.plugins, strict=True):
        print(f"{p['name']} ({_where(info)})", file=out)
        print(f"  ops: {', '.join(p['ops']) or '(none)'}", file=out)
        for op, replaced in p["overrides"].items():
            print(f"  {op} overrides plugin(s) {', '.join(replaced)}", file=out)
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


def check_command(args: argparse.Namespace, out: TextIO | None = None,
                  err: TextIO | None = None) -> int:
    """``autodag check [PLUGIN ...]``: gradient-check ops; 1 on any failure, 2 on misuse."""
    from .testing import check_op

    out, err = out or sys.stdout, err or sys.stderr
    reg = _registry(err)
    if reg is None:
        return 1
    by_plugin = reg.by_plugin()
    # A distribution name (autodag-math) names its plugin (math) too.
    by_dist = {p.distribution: p.name for p in reg.plugins if p.distribution}
    wanted = [by_dist.get(n, n) if n not in by_plugin else n for n in args.plugin]
    wanted = list(dict.fromkeys(wanted)) or list(by_plugin)
    unknown = [name for name in wanted if name not in by_plugin]
    if unknown:
        print(f"autodag check: no loaded plugin named {', '.join(map(repr, unknown))}; "
              f"loaded: {', '.join(by_plugin)}", file=err)
        return 2
    rows: list[tuple[str, str, str]] = []
    failures: list[str] = []
    for plugin in wanted:
        for name in by_plugin[plugin]:
            registered = reg.ops[name]
            if registered.opdef.samples is None:
                rows.append((name, plugin, "skipped (no samples)"))
                continue
            try:
                res = check_op(registered)
            except Exception as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                rows.append((name, plugin, "FAIL"))
                failures.append(f"{name}: {first if not args.verbose else exc}")
                continue
            what = "gradients" if res.gradients_checked else "forward only"
            rows.append((name, plugin, f"ok ({res.samples} samples, {what})"))
    w_op = max([len("op"), *(len(r[0]) for r in rows)])
    w_pl = max([len("plugin"), *(len(r[1]) for r in rows)])
    print(f"{'op':<{w_op}}  {'plugin':<{w_pl}}  result", file=out)
    for op, plugin, result in rows:
        print(f"{op:<{w_op}}  {plugin:<{w_pl}}  {result}", file=out)
    passed = sum(r[2].startswith("ok") for r in rows)
    skipped = sum(r[2].startswith("skipped") for r in rows)
    print(f"\n{passed} passed, {len(failures)} failed, {skipped} skipped", file=out)
    for f in failures:
        print(f"FAIL {f}", file=out)
    return 1 if failures else 0
