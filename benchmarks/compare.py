"""Compare the working tree against a git revision, case by case, in one run.

``python benchmarks/compare.py --base REF [--quick] [--repeats N]`` exports REF's tree
(``git archive``) and a copy of the working tree's ``src`` directories (taken once, at
the start) into a temporary directory and runs every case of ``run.py`` (W1-W4
and the compile-cost cases), ``beyond.py``'s workloads and an import probe once per
round for each side, in turns: base, current, base, current, ... Each run is a fresh
process that executes this tree's benchmark scripts (``workloads.py``,
``compile_cost.py``, ``beyond.py``) but imports ``autodag`` and
its plugins (``autodag_math``, ``autodag_array``, ``autodag_nn``) from its side's tree:
a bootstrap puts that tree's source directories first on ``sys.path``, drops every other
directory holding an ``autodag*`` package and any editable-install finder, then runs the
script with ``runpy``. The plugins' entry points (installed metadata) name modules such
as ``autodag_math.plugin``, so they load from the same tree. A probe per side checks
where every ``autodag*`` module came from before anything is timed.

Writes a Markdown table (case, contender, base, current, current/base and the range of
the per-round ratios) to ``benchmarks/COMPARE.md`` (``--out``) and prints it.
``--cases W1,chain-1000`` runs only some cases; ``--current REF`` compares against
another revision instead of the working tree (``--base HEAD --current HEAD`` measures
the noise).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from run import BLAS_VARS, COMPILE_CASES, WORKLOAD_CASES, budgets, fmt_seconds

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: Seconds a single run may take before it counts as failed.
TIMEOUT = 1800.0
PLUGIN_MODULES = ("autodag_math", "autodag_array", "autodag_nn")

#: Run as ``python -c _BOOTSTRAP SCRIPT ARGS...`` with AUTODAG_COMPARE_ROOTS set to the
#: side's source directories (os.pathsep-separated); writes the file of every autodag
#: module the script imported to AUTODAG_COMPARE_ORIGIN.
_BOOTSTRAP = r"""
import os, runpy, sys
roots = [os.path.realpath(p) for p in os.environ.pop("AUTODAG_COMPARE_ROOTS").split(os.pathsep)]
early = sorted(m for m in sys.modules if m.split(".")[0].startswith("autodag"))
if early:
    raise SystemExit(f"compare bootstrap: {early} were imported before it ran")

def editable(obj):
    return "__editable__" in str(getattr(obj, "__module__", ""))

def shadows(p):
    # Another tree's autodag (an editable install's .pth line, PYTHONPATH, ...).
    if os.path.basename(p.rstrip(os.sep)) in ("site-packages", "dist-packages"):
        return False
    try:
        names = os.listdir(p)
    except OSError:
        return False
    return any(n == "autodag" or n.startswith("autodag_") for n in names)

sys.meta_path[:] = [f for f in sys.meta_path if not editable(f)]
sys.path_hooks[:] = [h for h in sys.path_hooks if not editable(h)]
sys.path_importer_cache.clear()
script = os.path.abspath(sys.argv[1])
rest = [p for p in sys.path
        if p and os.path.realpath(p) not in roots and not shadows(p)]
sys.path[:] = [os.path.dirname(script), *roots, *rest]
sys.argv = sys.argv[1:]
try:
    runpy.run_path(script, run_name="__main__")
finally:
    import json
    with open(os.environ["AUTODAG_COMPARE_ORIGIN"], "w") as f:
        json.dump({name: getattr(mod, "__file__", None) for name, mod in list(sys.modules.items())
                   if name.split(".")[0].startswith("autodag")}, f)
"""

#: Import times, as run.py's probe measures them (loading the plugins included).
_PROBE = r"""
import json, time
t0 = time.perf_counter()
import numpy, pluggy
t1 = time.perf_counter()
import autodag
t2 = time.perf_counter()
autodag.get_registry()
t3 = time.perf_counter()
print(json.dumps({"times": {"import autodag": t2 - t1, "load plugins": t3 - t2}}))
"""


@dataclass
class Side:
    """One of the two trees: where its source is and what to call it."""

    name: str
    label: str
    tree: Path

    @property
    def roots(self) -> list[str]:
        """The tree's ``src`` and every plugin's ``src``, in sys.path order."""
        plugins = sorted(str(p) for p in (self.tree / "plugins").glob("*/src") if p.is_dir())
        return [str(self.tree / "src"), *plugins]


@dataclass
class Case:
    """One benchmark case and what each of its runs measured."""

    label: str
    script: Path
    args: list[str]
    clean_blas: bool = False
    kind: str = "workload"
    #: side -> contender -> one value per round (seconds, or an error string)
    samples: dict[str, dict[str, list[float | str]]] = field(default_factory=dict)
    nodes: dict[str, set[int]] = field(default_factory=dict)
    notes: set[str] = field(default_factory=set)


def _git(*args: str) -> str:
    out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def _export(ref: str, dest: Path) -> str:
    """Extract ``ref``'s tree into ``dest``; its commit's short hash."""
    sha = _git("rev-parse", "--verify", "--short", f"{ref}^{{commit}}")
    dest.mkdir(parents=True)
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", sha],
                               stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    if archive.stdout is not None:
        archive.stdout.close()
    if archive.wait() != 0:
        raise RuntimeError(f"git archive {sha} failed")
    return sha


def _snapshot(dest: Path) -> None:
    """Copy the working tree's source directories (as ``Side.roots`` finds them) into
    ``dest``, so that edits made during the run do not change what is measured."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "src", dest / "src", ignore=ignore)
    for src in sorted((ROOT / "plugins").glob("*/src")):
        shutil.copytree(src, dest / src.relative_to(ROOT), ignore=ignore)


def _launch(side: Side, script: Path, args: Sequence[str], cache: Path,
            clean_blas: bool, needs_plugins: bool = False) -> dict[str, Any] | str:
    """Run ``script`` on ``side``'s autodag in a fresh process: its last JSON line, or
    an error string if it failed. Exits if it imported autodag modules from elsewhere
    (or, with ``needs_plugins``, did not import the plugins)."""
    origin = cache.parent / "origin.json"
    origin.unlink(missing_ok=True)
    env = dict(os.environ)
    env["AUTODAG_COMPARE_ROOTS"] = os.pathsep.join(side.roots)
    env["AUTODAG_COMPARE_ORIGIN"] = str(origin)
    # Bytecode caches for both trees in one place (warm after the first probe), as
    # after any install; nothing is written into the trees.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    if clean_blas:
        for v in BLAS_VARS:
            env.pop(v, None)
    try:
        out = subprocess.run([sys.executable, "-c", _BOOTSTRAP, str(script), *args],
                             capture_output=True, text=True, env=env, cwd=cache.parent,
                             timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return f"error: timeout after {TIMEOUT:.0f} s"
    if origin.exists():
        _check_origin(side, json.loads(origin.read_text()), needs_plugins)
    elif out.returncode == 0:
        sys.exit(f"{side.name}: the bootstrap wrote no module list ({script.name})")
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        return f"error: {last[:120]}"
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError:
        return f"error: no JSON in the output ({lines[-1][:80]})"
    return result


def _check_origin(side: Side, files: dict[str, str | None], needs_plugins: bool) -> None:
    """Every autodag module a run imported came from ``side``'s tree (and, with
    ``needs_plugins``, autodag and the three plugins are among them); else exit."""
    roots = [os.path.realpath(r) + os.sep for r in side.roots]
    wanted = ("autodag", *PLUGIN_MODULES) if needs_plugins else ()
    missing = [m for m in wanted if m not in files]
    strays = {m: f for m, f in files.items()
              if f is None or not any(os.path.realpath(f).startswith(r) for r in roots)}
    if strays or missing:
        sys.exit(f"{side.name} ({side.label}) does not import only its own tree: "
                 f"missing {missing}, from elsewhere {strays}")


def _origin_of(cache: Path, module: str) -> str | None:
    """The file ``module`` came from in the last run."""
    files: dict[str, str | None] = json.loads((cache.parent / "origin.json").read_text())
    return files.get(module)


def _values(case: Case, r: dict[str, Any]) -> dict[str, float | str]:
    """The contenders' seconds (or error strings) in one run's result."""
    if case.kind == "workload":
        times: dict[str, float | str] = dict(r["times"])
        info = r["info"]
        if "compile_s" in info:
            times["graph build"] = info["build_s"]
            times["ad.compile"] = info["compile_s"]
        return times
    if case.kind == "compile":
        order = ("compile + first call", "compile", "first call", "second call",
                 "later call")
        return {k: r["times"][k] for k in order if k in r["times"]}
    return dict(r["times"])


def _record(case: Case, side: Side, r: dict[str, Any] | str) -> None:
    per = case.samples.setdefault(side.name, {})
    if isinstance(r, str):
        per.setdefault("(run)", []).append(r)
        case.notes.add(f"{side.name}: {r}")
        return
    for k, v in _values(case, r).items():
        per.setdefault(k, []).append(v)
    if case.kind == "compile":
        case.nodes.setdefault(side.name, set()).add(int(r["nodes"]))
        if r["check"] != "ok" or r["errors"]:
            errors = "; ".join(f"{k}: {v}" for k, v in r["errors"].items())
            case.notes.add(f"{side.name}: check {r['check']}"
                           + (f" ({errors})" if errors else ""))


def _median(values: Sequence[float | str]) -> float | str | None:
    nums = [v for v in values if isinstance(v, float)]
    if nums:
        return statistics.median(nums)
    return next((v for v in values if isinstance(v, str)), None)


def _cell(values: Sequence[float | str]) -> str:
    m = _median(values)
    if m is None:
        return "-"
    text = fmt_seconds(m)
    failed = sum(isinstance(v, str) for v in values)
    if isinstance(m, float) and failed:
        text += f" ({failed} failed)"
    return text


def _rows(case: Case) -> list[str]:
    base = case.samples.get("base", {})
    cur = case.samples.get("current", {})
    label = case.label
    if case.nodes:
        counts = [sorted(case.nodes.get(s, set())) for s in ("base", "current")]
        shown = [",".join(map(str, c)) or "?" for c in counts]
        label += f" ({shown[0] if shown[0] == shown[1] else ' / '.join(shown)} nodes)"
    names = list(base) + [k for k in cur if k not in base]
    rows = []
    for name in names:
        b, c = base.get(name, []), cur.get(name, [])
        mb, mc = _median(b), _median(c)
        ratio, spread = "-", "-"
        if isinstance(mb, float) and isinstance(mc, float) and mb > 0:
            ratio = f"{mc / mb:.2f}x"
            paired = [y / x for x, y in zip(b, c)
                      if isinstance(x, float) and isinstance(y, float) and x > 0]
            if paired:
                spread = f"{min(paired):.2f}-{max(paired):.2f}x"
        rows.append(f"| {label} | {name} | {_cell(b)} | {_cell(c)} | {ratio} | {spread} |")
    return rows


def _cases(quick: bool, only: set[str] | None) -> list[Case]:
    budget, repeats = budgets(quick)
    cases = [Case(label, HERE / "workloads.py", [*a, "--budget", budget, "--repeats", repeats],
                  clean) for label, a, clean in WORKLOAD_CASES]
    cases += [Case(label, HERE / "compile_cost.py", a, kind="compile")
              for label, a in COMPILE_CASES]
    # Workloads beyond the published ones (beyond.py), each against its own baseline.
    cases.append(Case("beyond", HERE / "beyond.py", ["--budget", budget, "--repeats", repeats],
                      kind="beyond"))
    if only is not None:
        unknown = only - {c.label for c in cases} - {"import"}
        if unknown:
            sys.exit(f"unknown case(s) {sorted(unknown)}; known: "
                     f"{[c.label for c in cases] + ['import']}")
        cases = [c for c in cases if c.label in only]
    return cases


def main(argv: Sequence[str] | None = None) -> None:
    """Run the comparison and write the Markdown report."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--base", required=True, help="git revision to compare against")
    p.add_argument("--current", default=None,
                   help="git revision for the 'current' side (default: the working tree)")
    p.add_argument("--quick", action="store_true", help="run.py's short timing budgets")
    p.add_argument("--repeats", type=int, default=None,
                   help="rounds, each a fresh process per side and case (default 3 with "
                        "--quick, else 5)")
    p.add_argument("--cases", default=None,
                   help="comma-separated case labels (as in the table; 'import' for the "
                        "import probe); default: all")
    p.add_argument("--out", default=str(HERE / "COMPARE.md"))
    args = p.parse_args(argv)
    rounds = args.repeats or (3 if args.quick else 5)
    only = {c.strip() for c in args.cases.split(",") if c.strip()} if args.cases else None
    cases = _cases(args.quick, only)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="autodag-compare-") as tmp:
        work = Path(tmp)
        cache = work / "pycache"
        cache.mkdir()
        base_sha = _export(args.base, work / "base")
        base = Side("base", f"`{args.base}` ({base_sha})", work / "base")
        if args.current is None:
            changed = len(_git("status", "--porcelain", "--", "src", "plugins").splitlines())
            _snapshot(work / "current")
            current = Side("current", f"the working tree as copied at the start ({changed} "
                                      "changed or untracked paths under src/, plugins/ "
                                      f"against `{_git('rev-parse', '--short', 'HEAD')}`)",
                           work / "current")
        else:
            cur_sha = _export(args.current, work / "current")
            current = Side("current", f"`{args.current}` ({cur_sha})", work / "current")
        sides = (base, current)
        probe = work / "probe.py"
        probe.write_text(_PROBE)
        imports = Case("import", probe, [], kind="import")
        for side in sides:  # also fills the bytecode cache, so import times are warm
            r = _launch(side, probe, [], cache, False, needs_plugins=True)
            if isinstance(r, str):
                sys.exit(f"{side.name} probe failed: {r}")
            for m in ("autodag", *PLUGIN_MODULES):
                print(f"{side.name}: {m} from {_origin_of(cache, m)}", file=sys.stderr)
        if only is None or "import" in only:
            for _ in range(max(rounds, 5)):
                for side in sides:
                    _record(imports, side, _launch(side, probe, [], cache, False, True))
            cases.append(imports)
        for case in cases:
            if case is imports:
                continue
            for k in range(rounds):
                for side in sides:
                    print(f"{case.label}: round {k + 1}/{rounds}, {side.name} ...",
                          file=sys.stderr, flush=True)
                    _record(case, side, _launch(side, case.script, case.args, cache,
                                                case.clean_blas))
    elapsed = time.perf_counter() - started
    command = shlex.join(["python", "benchmarks/compare.py",
                          *(sys.argv[1:] if argv is None else argv)])
    notes = [f"- {c.label}: {n}." for c in cases for n in sorted(c.notes)]
    lines = [
        "# Base vs current",
        "",
        f"Generated by `{command}` ({elapsed:.0f} s) on {platform.machine()} with "
        f"{os.cpu_count()} cores, Python {platform.python_version()}. base = {base.label}; "
        f"current = {current.label}. Both sides run this tree's benchmark scripts, each in "
        "a fresh process, in turns (base, current, base, ...) per case; only `autodag` and "
        "its plugins come from the two trees (checked by a probe). Cells are medians of "
        f"{rounds} rounds ({max(rounds, 5)} for the import probe) of the per-process "
        "figures (themselves medians for W1-W4 and later calls); ratio = current / base; "
        "range = smallest and largest per-round ratio. The `baseline` rows time the "
        "hand-written code of each case: their ratios show the machine's drift.",
        "",
        "| case | contender | base | current | current/base | range |",
        "|---|---|---|---|---|---|",
        *(row for c in cases for row in _rows(c)),
        "",
        *notes,
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
