"""The ``autodag plugins`` and ``autodag check`` commands."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from . import checkrun
from .errors import AutodagError
from .plugin_list import load_registry, plugins_command, print_conflicts
from .registry import (
    ENV_DISABLE_AUTOLOAD,
    ENV_LOAD_ONLY,
    FailedPlugin,
    RegisteredOp,
    Registry,
)

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
        "check", help="check the ops of plugins as users will call them",
        description="Run autodag.testing.check_op on every op (with samples) of the named "
                    "plugins, or of all plugins: gradients against finite differences, "
                    "symbolic gradients, second order and forward mode through the rules, "
                    "static shapes, inline templates, float32. Lists the ops of other "
                    "plugins each op needs. Exit code 1 if any op fails, any plugin "
                    "failed to load or two plugins define the same op, 2 for a plugin "
                    "name that is not loaded.",
        epilog=checkrun.CHECK_JSON_SCHEMA, formatter_class=checkrun.HelpFormatter,
    )
    c.add_argument("plugin", nargs="*", metavar="PLUGIN",
                   help="plugin or distribution names (default: all)")
    c.add_argument("--order", type=int, choices=(1, 2), default=2,
                   help="highest derivative order checked: 2 (default) adds the "
                        "Hessian-vector product to the gradients, jvp and other checks")
    c.add_argument("--json", action="store_true",
                   help="print the result as JSON for machines (schema below)")
    c.add_argument("-v", "--verbose", action="store_true",
                   help="print each sample's checks and largest errors, and every failure "
                        "in full with the traceback of the error inside the op's code")
    c.set_defaults(func=check_command)


@dataclass(frozen=True)
class _Row:
    """One line of the ``autodag check`` table, and the lines under it."""

    op: str
    plugin: str
    result: str
    extra: tuple[str, ...] = ()
    #: The op's entry of ``--json`` (``checkrun.op_data``, or a skipped/left-out one).
    data: dict[str, Any] = field(default_factory=dict, compare=False)


def check_command(args: argparse.Namespace, out: TextIO | None = None,
                  err: TextIO | None = None) -> int:
    """``autodag check [-v] [--order N] [--json] [PLUGIN ...]``: check ops; 1 on a
    failure, 2 on misuse."""
    out, err = out or sys.stdout, err or sys.stderr
    reg = load_registry(err)
    if reg is None:
        return 1
    wanted = _wanted_plugins(reg, args.plugin, err)
    if wanted is None:
        return 2
    order = getattr(args, "order", 2)
    rows, failures = _collect_rows(reg, wanted, args.verbose, order)
    code = 1 if failures or reg.failed or reg.conflicts else 0
    if getattr(args, "json", False):
        entries = [(r.plugin, r.data) for r in rows]
        json.dump(checkrun.check_data(reg, wanted, entries, order, code), out, indent=2)
        out.write("\n")
        return code
    _print_table(rows, out)
    if failures:
        print(file=out)
        for f in failures:
            print(f"FAIL {f}", file=out)
    _print_failed_plugins(reg, args.plugin, out)
    if reg.conflicts:
        print("\nconflicts (these ops were left out, not checked):", file=out)
        print_conflicts(reg, out)
    print(f"\n{_summary(reg, rows, failures)}", file=out)
    return code


def _wanted_plugins(reg: Registry, names: list[str], err: TextIO) -> list[str] | None:
    """The loaded plugins ``names`` ask for (all when empty); None, said, for unknown ones."""
    by_plugin = reg.by_plugin()
    # A distribution name (autodag-math) names its plugin (math) too.
    by_dist = {p.distribution: p.name for p in reg.plugins if p.distribution}
    failed = _failed_by_name(reg)
    unloaded = {key for info, _ in reg.unloaded for key in (info.name, info.distribution) if key}
    wanted: list[str] = []
    unknown: list[str] = []
    for name in dict.fromkeys(names):
        if name in by_plugin or name in by_dist:
            wanted.append(by_dist.get(name, name) if name not in by_plugin else name)
        elif name not in failed:
            unknown.append(name)
    if unknown:
        why = "".join(
            f"; {n!r} is installed but not loaded ({ENV_DISABLE_AUTOLOAD} or "
            f"{ENV_LOAD_ONLY})" for n in unknown if n in unloaded)
        print(f"autodag check: no loaded plugin named {', '.join(map(repr, unknown))}{why}; "
              f"loaded: {', '.join(by_plugin)}", file=err)
        return None
    return list(dict.fromkeys(wanted)) if names else list(by_plugin)


def _failed_by_name(reg: Registry) -> dict[str, FailedPlugin]:
    return {key: f for f in reg.failed for key in (f.name, f.distribution) if key}


def _collect_rows(reg: Registry, wanted: list[str], verbose: bool,
                  order: int = 2) -> tuple[list[_Row], list[str]]:
    """The table's rows, op by op of each wanted plugin, and the failure lines."""
    by_plugin = reg.by_plugin()
    rows: list[_Row] = []
    failures: list[str] = []
    for plugin in wanted:
        left_out = _left_out_rows(reg, plugin)
        for name in sorted([*by_plugin[plugin], *left_out]):
            if name in left_out:
                rows.append(left_out[name])
                continue
            row, failure = _check_row(reg.ops[name], plugin, verbose, order)
            rows.append(row)
            if failure is not None:
                failures.append(failure)
    return rows, failures


def _left_out_rows(reg: Registry, plugin: str) -> dict[str, _Row]:
    """Rows for the ops of ``plugin`` that a conflict left out of the registry, by op."""
    return {c.op: _Row(c.op, plugin, "left out (conflict: defined by "
                       + " and ".join(p.name for p in c.providers) + "; see below)",
                       data={"op": c.op, "status": "left out", "reason": c.describe(),
                             "needs": [], "samples": []})
            for c in reg.conflicts.values() if any(p.name == plugin for p in c.providers)}


def _check_row(registered: RegisteredOp, plugin: str, verbose: bool,
               order: int = 2) -> tuple[_Row, str | None]:
    """check_op on each sample of one op: its row, and the failure line if it failed."""
    from . import testing

    name = registered.opdef.name
    if registered.opdef.samples is None:
        return _Row(name, plugin, "skipped (no samples)", data={
            "op": name, "status": "skipped", "reason": "no samples", "needs": [],
            "samples": []}), None
    res = checkrun.check_samples(registered, order)
    data = checkrun.op_data(res)
    failed = res.failure
    if failed is not None and failed.error is not None:
        text = _failure_text(failed.error, verbose)
        return _Row(name, plugin, "FAIL", data=data), f"{name} ({plugin}): {text}"
    # Symbolic gradients go unsaid in the table: jvp and 2nd order are built on them.
    short = {testing.SYMBOLIC: "", testing.SECOND_ORDER: "2nd order",
             testing.SECOND_ORDER_BUILT: "2nd order built only",
             testing.STATIC_SHAPES: "shapes", testing.INLINE: "inline"}
    done = [short.get(c, c) for c in res.checks if short.get(c, c)]
    if not registered.opdef.differentiable:
        done.insert(0, "forward only")
    elif not registered.opdef.symbolic:
        done.append("first order only: symbolic=False")
    elif order < 2:
        done.append("first order only: --order 1")
    extra = [f"needs: {', '.join(res.needs)}"] if res.needs else []
    if verbose:
        for d in (s.report for s in res.samples if s.report is not None):
            extra.append(d.describe())
            extra.extend(f"  note: {note}" for note in d.notes)
    n = len(res.samples)
    result = f"ok ({n} sample{'s' * (n != 1)}: {', '.join(done)})"
    return _Row(name, plugin, result, tuple(extra), data), None


def _failure_text(exc: Exception, verbose: bool) -> str:
    """A failed check's message: its first line, or (verbose) all of it with the
    traceback of the error inside the op's code."""
    import traceback

    from . import testing

    text = str(exc) or type(exc).__name__
    if not isinstance(exc, testing.OpCheckError):
        text = f"{type(exc).__name__}: {text}"
    if not verbose:
        return text.splitlines()[0]
    root = exc.__cause__ if isinstance(exc, testing.OpCheckError) else exc
    # autodag's own errors wrap the op author's: show the innermost one's traceback.
    while root is not None and isinstance(root, AutodagError) and root.__cause__ is not None:
        root = root.__cause__
    if root is not None:
        text += "\n" + "".join(traceback.format_exception(
            type(root), root, root.__traceback__)).rstrip()
    return text


def _print_table(rows: list[_Row], out: TextIO) -> None:
    if not rows:
        return
    w_op = max([len("op"), *(len(r.op) for r in rows)])
    w_pl = max([len("plugin"), *(len(r.plugin) for r in rows)])
    print(f"{'op':<{w_op}}  {'plugin':<{w_pl}}  result", file=out)
    for r in rows:
        print(f"{r.op:<{w_op}}  {r.plugin:<{w_pl}}  {r.result}", file=out)
        for line in r.extra:
            print(f"{'':<{w_op}}  {'':<{w_pl}}  {line}", file=out)


def _print_failed_plugins(reg: Registry, asked: list[str], out: TextIO) -> None:
    if not reg.failed:
        return
    failed = _failed_by_name(reg)
    print("\nfailed to load (their ops were not checked):", file=out)
    for fp in reg.failed:
        dist = f" ({fp.distribution} {fp.version or ''})".replace(" )", ")") \
            if fp.distribution else ""
        mark = " [asked for]" if any(failed.get(n) is fp for n in asked) else ""
        print(f"  {fp.name}{dist}{mark}: {fp.reason}", file=out)


def _summary(reg: Registry, rows: list[_Row], failures: list[str]) -> str:
    passed = sum(r.result.startswith("ok") for r in rows)
    skipped = sum(r.result.startswith("skipped") for r in rows)
    summary = f"{passed} passed, {len(failures)} failed, {skipped} skipped"
    if reg.failed:
        k = len(reg.failed)
        summary += f"; {k} plugin{'s' * (k != 1)} failed to load"
    if reg.conflicts:
        k = len(reg.conflicts)
        summary += f"; {k} op{'s' * (k != 1)} left out by a plugin conflict"
    return summary
