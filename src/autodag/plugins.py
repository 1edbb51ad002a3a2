"""Plugin loading: the pluggy manager, entry points, the environment's settings.

``build_manager`` makes a plugin manager holding the built-in plugin and every entry
point of the ``autodag`` group the environment allows. Entry points are loaded one by
one so that a broken plugin is reported and skipped (``report``: a ``PluginWarning``, or
``PluginLoadError`` in strict mode) instead of taking the library down. ``Hooks`` is the
only code that touches pluggy's untyped ``pm.hook``. This module holds no state: the
manager of the process, and the op registry built from it, live in ``autodag.registry``.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pluggy

if TYPE_CHECKING:
    # importlib.metadata costs tens of milliseconds: imported when plugins load, not here.
    import importlib.metadata as md

from . import builtin, hookspecs
from .errors import PluginLoadError, PluginWarning
from .opdef import OpDef
from .sites import user_stacklevel

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
    "installed_entry_points",
    "mentions_op",
    "report",
    "strict",
    "unknown_hook_reason",
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
        #: Conflicts already warned about (op name, provider names...).
        self.warned: set[tuple[str, ...]] = set()

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
        return self.call_each("autodag_register_ops")

    def call_each(self, hook: str) -> Iterator[tuple[str, object]]:
        """Yield (plugin name, raw result, or the exception raised) of each implementation
        of the hook named ``hook``, each called alone."""
        caller = getattr(self._pm.hook, hook)
        # Call each implementation alone so that every item is credited to its plugin.
        for impl in caller.get_hookimpls():
            try:
                result: object = impl.function()
            except Exception as exc:
                # Typically an OpDef that failed validation: one plugin's fault, not ours.
                result = exc
            yield impl.plugin_name, result


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def strict() -> bool:
    """Whether ``AUTODAG_STRICT_PLUGINS`` turns every plugin problem into an error."""
    return _env_flag(ENV_STRICT)


def unknown_hook_reason(exc: pluggy.PluginValidationError) -> str:
    """pluggy's "unknown hook" message, with the closest real hook names."""
    import difflib

    hooks = [n for n in dir(hookspecs) if n.startswith(f"{hookspecs.PROJECT_NAME}_")]
    named = re.findall(r"unknown hook '([^']+)'", str(exc))
    close = difflib.get_close_matches(named[0], hooks, n=2, cutoff=0.8) if named else []
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"unknown hook: {exc}{hint}"


def report(failure: FailedPlugin, pm: Manager) -> None:
    """Record a skipped plugin and warn (or raise, in strict mode)."""
    where = f" from entry point {failure.entry_point!r}" if failure.entry_point else ""
    dist = f" of {failure.distribution}" if failure.distribution else ""
    name = f"autodag plugin {failure.name!r}{dist}{where}"
    if strict():
        raise PluginLoadError(
            f"{name} failed to load: {failure.reason} ({ENV_STRICT} is set, so this is an "
            "error; unset it to skip the plugin with a warning instead)"
        )
    pm.failed.append(failure)
    warnings.warn(f"{name} was skipped: {failure.reason}", PluginWarning,
                  stacklevel=user_stacklevel())


def _entry_point_info(ep: md.EntryPoint) -> PluginInfo:
    dist = getattr(ep, "dist", None)
    return PluginInfo(
        name=ep.name,
        distribution=dist.metadata["Name"] if dist is not None else None,
        version=dist.version if dist is not None else None,
        entry_point=f"{ep.name} = {ep.value}",
    )


def _wanted() -> set[str] | None:
    only = os.environ.get(ENV_LOAD_ONLY)
    return None if only is None else {n.strip() for n in only.split(",") if n.strip()}


def _matches(pattern: str, info: PluginInfo) -> bool:
    return any(n is not None and fnmatch.fnmatchcase(n, pattern)
               for n in (info.name, info.distribution))


def _allowed(info: PluginInfo) -> bool:
    """Whether the environment lets an entry point load (checked before import).

    ``AUTODAG_LOAD_PLUGINS`` may name the plugin (``math``) or its distribution
    (``autodag-math``), or give shell-style patterns (``autodag-*``).
    """
    if _env_flag(ENV_DISABLE_AUTOLOAD):
        return False
    wanted = _wanted()
    return wanted is None or any(_matches(w, info) for w in wanted)


def installed_entry_points() -> list[md.EntryPoint]:
    """The environment's ``autodag`` entry points, sorted by name, the first of each name.

    Sorted, so that plugins (and any conflict between them) come out the same every run;
    a distribution seen twice on ``sys.path`` counts once.
    """
    import importlib.metadata as md

    seen: dict[str, md.EntryPoint] = {}
    for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        seen.setdefault(ep.name, ep)
    return list(seen.values())


def _load_entry_points(pm: Manager) -> None:
    eps = installed_entry_points()
    infos = [_entry_point_info(ep) for ep in eps]
    for info, ep in zip(infos, eps, strict=True):
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
    wanted = _wanted()
    # A pattern may match nothing; a plain name that matches nothing is likely misspelt.
    unknown = sorted(w for w in wanted or () if not any(c in w for c in "*?[")
                     and not any(_matches(w, i) for i in infos))
    if unknown and not _env_flag(ENV_DISABLE_AUTOLOAD):
        # A misspelt name would otherwise just make ops go missing.
        warnings.warn(
            f"{ENV_LOAD_ONLY} names {', '.join(map(repr, unknown))}, but no installed "
            f"plugin has that name; installed: "
            f"{', '.join(sorted(i.name for i in infos)) or 'none'}",
            PluginWarning, stacklevel=user_stacklevel(),
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
                FailedPlugin(name, unknown_hook_reason(exc), info.distribution, info.version,
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
    names = [o.name for o in ops]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise PluginLoadError(
            f"autodag_register_ops defines op {', '.join(map(repr, twice))} more than once"
        )
    return ops


def mentions_op(ep: md.EntryPoint, op_name: str) -> bool:
    """Whether an unloaded plugin's source names ``op_name``, read without importing it.

    Plugins left out must never run, so this only reads the text of the entry point's
    module (and of its package's other modules): a hint for "which package provides X".
    """
    quoted = re.compile(rf"""(['"]){re.escape(op_name)}\1""")
    return any(quoted.search(text) for text in _sources(ep.value.split(":")[0].strip()))


def _sources(module: str) -> list[str]:
    """The texts of a module's files, each read once while it is unchanged."""
    texts = []
    for path in _module_files(module):
        try:
            st = path.stat()
        except OSError:
            continue
        if st.st_size <= _MAX_SCAN_BYTES:
            texts.append(_read(str(path), st.st_mtime_ns, st.st_size))
    return texts


@functools.lru_cache(maxsize=64)
def _read(path: str, mtime_ns: int, size: int) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


_MAX_SCAN_BYTES: Final = 2_000_000


def _module_files(module: str) -> list[Path]:
    """The source files of a module and of its package, found without executing either."""
    import importlib.util
    from importlib.machinery import PathFinder

    top, *rest = module.split(".")
    try:
        # For a top-level name find_spec imports nothing; submodules are then looked up
        # in the package's folders directly, which would otherwise import the package.
        spec = importlib.util.find_spec(top)
        for depth in range(len(rest)):
            if spec is None or not spec.submodule_search_locations:
                return []
            name = ".".join([top, *rest[: depth + 1]])
            spec = PathFinder.find_spec(name, list(spec.submodule_search_locations))
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return []
    here = Path(spec.origin)
    if not rest and here.name != "__init__.py":
        return [here]  # a top-level module: its folder is site-packages, not a package
    return [here, *sorted(p for p in here.parent.glob("*.py") if p != here)]
