"""What autodag's pytest plugin does: op checks and isolated registries.

pytest loads the plugin through the ``pytest11`` entry point ``autodag``, which is the
small package ``autodag_pytest``: outside this package, so that starting pytest imports
nothing of autodag. Its hooks and fixtures call the functions here, imported only for a
test that uses what follows (``-p no:autodag`` turns the plugin off). It gives:

* the marker ``@pytest.mark.autodag_plugins("hypot", "autodag-math")``: the test (or
  every test of a module with ``pytestmark = ...``) runs with a registry holding only
  the built-in plugin and the named ones (plugin or distribution names, or shell
  patterns), whatever else is installed; the previous registry comes back afterwards;
* the fixture ``autodag_registry``, a function ``autodag_registry(*names)`` making the
  same isolated registry inside a test (undone when the test ends), and the fixture
  ``autodag_plugins``, the registry the test runs with;
* the fixture ``autodag_op_check``: a test taking it is run once per sample of every op
  of the plugins its ``autodag_plugins`` marker names (``check=[...]`` narrows them to
  some, the others being what those need). Calling it runs
  ``autodag.testing.check_op`` on that op and sample: first and second order, forward
  mode, float64 and float32, static shapes and inline templates. A defect fails the
  test with check_op's report; the call returns the ``OpCheckResult``;
* the option ``pytest --autodag-plugin=NAME`` (repeatable), which adds one test of
  each sample of each op of the plugin (ids ``hypot[sample 1]``; ``hypot``, skipped,
  for an op without samples), run with a registry of only the plugins named by it and
  by ``--autodag-load=NAME`` (plugins loaded, not checked: those the ops' rules use).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pytest

from . import registry, testing
from .errors import ArgumentError, AutodagError, PluginLoadError, PluginWarning
from .plugins import ENV_DISABLE_AUTOLOAD, ENV_LOAD_ONLY, installed_entry_points
from .registry import Registry, get_registry
from .testing import OpCheckError, OpCheckResult

__all__ = [
    "OpCase",
    "OpCheckItem",
    "add_option_items",
    "generate_tests",
    "isolate",
    "isolated_registry",
    "op_cases",
    "op_check",
    "registry_factory",
    "restore",
    "run_case",
]

MARKER: Final = "autodag_plugins"
OPTION: Final = "--autodag-plugin"
_STACK: Final = pytest.StashKey[contextlib.ExitStack]()


@dataclass(frozen=True)
class OpCase:
    """One op and sample to check: what ``autodag_op_check`` and ``--autodag-plugin``
    tests run (``sample`` None: the op has no samples, and is skipped)."""

    op: str
    plugin: str
    sample: int | None

    @property
    def id(self) -> str:
        """The test id: ``op[sample k]``, or ``op`` for an op without samples."""
        return self.op if self.sample is None else f"{self.op}[sample {self.sample}]"


@contextlib.contextmanager
def isolated_registry(names: Sequence[str]) -> Iterator[Registry]:
    """A registry of the built-in plugin and the plugins ``names``; the previous after."""
    bad = [n for n in names if not isinstance(n, str) or not n.strip() or "," in n]
    if bad:
        raise ArgumentError(f"{MARKER}: plugin names must be non-empty strings without "
                            f"commas, got {bad[0]!r}")
    env = {v: os.environ.get(v) for v in (ENV_LOAD_ONLY, ENV_DISABLE_AUTOLOAD)}
    with registry._lock:
        # Kept, not rebuilt afterwards: plugins registered at run time survive the test.
        saved = (registry._manager, registry._registry, registry._registry_version)
    os.environ[ENV_LOAD_ONLY] = ",".join(names)
    os.environ.pop(ENV_DISABLE_AUTOLOAD, None)
    registry.reset_plugins()
    try:
        yield _load(names)
    finally:
        for var, value in env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        with registry._lock:
            registry._manager, registry._registry, registry._registry_version = saved


def _load(names: Sequence[str]) -> Registry:
    """The registry of the environment just set; PluginLoadError for a name not loaded."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginWarning)
        reg = get_registry()
    for w in caught:  # a named plugin that failed to load is the error below instead
        if not issubclass(w.category, PluginWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for name in names:
        if any(fnmatch.fnmatchcase(n or "", name)
               for p in reg.plugins for n in (p.name, p.distribution)):
            continue
        failed = [f for f in reg.failed
                  if any(fnmatch.fnmatchcase(n or "", name) for n in (f.name, f.distribution))]
        why = (f"it failed to load: {failed[0].reason}" if failed else "installed: " + (
            ", ".join(sorted(ep.name for ep in installed_entry_points())) or "none"))
        raise PluginLoadError(f"no autodag plugin named {name!r} loaded; {why}")
    return reg


def isolate(item: pytest.Item) -> None:
    """Isolate the registry of a test carrying the marker (before its fixtures run)."""
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(isolated_registry(marker.args))
    except AutodagError as exc:
        problem = str(exc)
    else:
        item.stash[_STACK] = stack
        return
    # The message says it all: no traceback through this plugin's internals.
    pytest.fail(f"@pytest.mark.{MARKER}: {problem}", pytrace=False)


def restore(item: pytest.Item) -> None:
    """Give back the registry ``isolate`` replaced (after the test's fixtures end)."""
    stack = item.stash.get(_STACK, None)
    if stack is not None:
        del item.stash[_STACK]
        stack.close()


def registry_factory() -> Iterator[Callable[..., Registry]]:
    """``autodag_registry(*names)``: an isolated registry of those plugins, for the test."""
    with contextlib.ExitStack() as stack:
        def make(*names: str) -> Registry:
            return stack.enter_context(isolated_registry(names))

        yield make


def op_check(request: pytest.FixtureRequest) -> Callable[..., OpCheckResult]:
    """``autodag_op_check(**check_op_options)``: check this test's op and sample."""
    case: OpCase = request.param

    def run(**options: Any) -> OpCheckResult:
        return run_case(case, **options)

    return run


def generate_tests(metafunc: pytest.Metafunc) -> None:
    """One call of an ``autodag_op_check`` test per op and sample of its plugins."""
    marker = metafunc.definition.get_closest_marker(MARKER)
    wanted = list(marker.kwargs.get("check") or marker.args) if marker else []
    if marker is None or not wanted:
        pytest.fail(f"{metafunc.definition.nodeid} uses autodag_op_check but names no "
                    f"plugin to check: mark it @pytest.mark.{MARKER}('name')", pytrace=False)
    try:
        with isolated_registry(marker.args) as reg:
            cases = op_cases(reg, wanted)
    except AutodagError as exc:
        problem = str(exc)
    else:
        metafunc.parametrize("autodag_op_check", cases, ids=[c.id for c in cases],
                             indirect=True)
        return
    # Outside the except clause: pytest would print the error a second time.
    pytest.fail(f"{metafunc.definition.nodeid}: {problem}", pytrace=False)


def op_cases(reg: Registry, names: Sequence[str]) -> list[OpCase]:
    """The cases of every op of the plugins ``names`` (plugin or distribution names)."""
    by_plugin = reg.by_plugin()
    plugins: list[str] = []
    for name in names:
        plugin = name if name in by_plugin else next(
            (p.name for p in reg.plugins if p.distribution == name), None)
        if plugin is None:
            raise PluginLoadError(f"no loaded autodag plugin named {name!r} to check; "
                                  f"loaded: {', '.join(by_plugin)}")
        plugins.append(plugin)
    cases: list[OpCase] = []
    for plugin in dict.fromkeys(plugins):  # a plugin named twice (by distribution) once
        for op in by_plugin[plugin]:
            samples = reg.ops[op].opdef.samples
            try:
                # The seed check_op draws with: the same samples, counted.
                n = len(list(samples(np.random.default_rng(0)))) if samples else 0
            except Exception:
                n = 1  # check_op reports the broken samples function in the test
            cases.extend(OpCase(op, plugin, k) for k in range(n))
            if samples is None:
                cases.append(OpCase(op, plugin, None))
    return cases


def run_case(case: OpCase, **options: Any) -> OpCheckResult:
    """check_op on the case's op and sample to second order; pytest.fail with its report."""
    if case.sample is None:
        pytest.skip(f"op {case.op!r} of plugin {case.plugin!r} has no samples: give its "
                    "OpDef samples=, or call autodag.testing.check_op with inputs")
    registered = get_registry().get(case.op)
    if registered.plugin.name != case.plugin:
        pytest.fail(f"op {case.op!r} is now provided by plugin "
                    f"{registered.plugin.describe()}, not {case.plugin!r}", pytrace=False)
    options = {"order": 2, "check_dtypes": True, **options}
    try:
        return testing.check_op(registered, sample=case.sample, **options)
    except testing.OpCheckError as exc:
        failure = exc
    # Outside the except clause: pytest would print the OpCheckError a second time.
    pytest.fail(failure_report(failure), pytrace=False)


def failure_report(exc: OpCheckError) -> str:
    """check_op's message, what passed before, and the op's own traceback if it raised."""
    lines = [str(exc)]
    if exc.check is not None:
        lines.append(f"failed check: {exc.check}")
    if exc.report is not None and exc.report.checks:
        lines.append("passed before: " + ", ".join(
            c if e is None else f"{c} (max |error| {e:.2g})" for c, e in exc.report.checks))
    root = exc.__cause__
    # autodag's own errors wrap the op author's: show the innermost one's traceback.
    while isinstance(root, AutodagError) and root.__cause__ is not None:
        root = root.__cause__
    if root is not None:
        lines.append("".join(traceback.format_exception(type(root), root,
                                                        root.__traceback__)).rstrip())
    return "\n".join(lines)


class OpCheckItem(pytest.Item):
    """A ``--autodag-plugin`` test: one sample of one op."""

    def __init__(self, *, case: OpCase, plugins: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.plugins = tuple(plugins)
        self._stack = contextlib.ExitStack()

    def setup(self) -> None:
        """Isolate the registry: only the plugins the options name."""
        self._stack.enter_context(isolated_registry(self.plugins))

    def teardown(self) -> None:
        """Give the previous registry back."""
        self._stack.close()

    def runtest(self) -> None:
        """Check the op and sample."""
        run_case(self.case)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        """Where pytest says the test is: the op, not a file."""
        return self.path, None, f"autodag check {self.case.id} ({self.case.plugin})"


def add_option_items(session: pytest.Session, items: list[pytest.Item]) -> None:
    """Add the ``--autodag-plugin`` tests after the collected ones."""
    names = session.config.getoption("autodag_plugin")
    plugins = [*names, *session.config.getoption("autodag_load")]
    try:
        with isolated_registry(plugins) as reg:
            cases = op_cases(reg, names)
    except AutodagError as exc:
        raise pytest.UsageError(f"{OPTION}: {exc}") from exc
    for case in cases:
        # The id alone: under the session, pytest would prefix it with "::".
        items.append(OpCheckItem.from_parent(session, name=case.id, nodeid=case.id,
                                             case=case, plugins=plugins))
