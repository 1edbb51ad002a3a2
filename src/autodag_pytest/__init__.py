"""autodag's pytest plugin as pytest loads it at start (``pytest11`` entry point ``autodag``).

It sits outside the ``autodag`` package so that loading it imports none of autodag: every
pytest run in an environment with autodag loads it. Each hook returns at once for a test
that uses none of its marker, fixtures and options, and hands the others to
``autodag.pytest_plugin`` (where the plugin is documented), imported then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from autodag.registry import Registry
    from autodag.testing import OpCheckResult

MARKER = "autodag_plugins"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--autodag-plugin`` and ``--autodag-load``."""
    group = parser.getgroup("autodag")
    group.addoption(
        "--autodag-plugin", action="append", default=[], metavar="PLUGIN",
        dest="autodag_plugin",
        help="check every op (each sample) of the autodag plugin PLUGIN with "
             "autodag.testing.check_op: one test per sample, in a registry of only the "
             "plugins named here and by --autodag-load (repeatable)")
    group.addoption(
        "--autodag-load", action="append", default=[], metavar="PLUGIN", dest="autodag_load",
        help="load the autodag plugin PLUGIN too, unchecked, for the --autodag-plugin "
             "checks (the plugins whose ops their rules use; repeatable)")


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker (so ``--strict-markers`` suites accept it)."""
    config.addinivalue_line(
        "markers", f"{MARKER}(*names, check=None): run with a registry holding only the "
                   "built-in plugin and the named autodag plugins; autodag_op_check "
                   "tests check the ops of the plugins named by check (default: all)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Isolate the registry of a test carrying the marker, before its fixtures run."""
    if item.get_closest_marker(MARKER) is not None:
        from autodag import pytest_plugin

        pytest_plugin.isolate(item)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Give the registry back after the test's fixtures are torn down."""
    if item.get_closest_marker(MARKER) is not None:
        from autodag import pytest_plugin

        pytest_plugin.restore(item)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One call of each ``autodag_op_check`` test per op and sample of its plugins."""
    if "autodag_op_check" in metafunc.fixturenames:
        from autodag import pytest_plugin

        pytest_plugin.generate_tests(metafunc)


def pytest_collection_modifyitems(session: pytest.Session, items: list[pytest.Item]) -> None:
    """Add the ``--autodag-plugin`` tests after the collected ones."""
    if session.config.getoption("autodag_plugin"):
        from autodag import pytest_plugin

        pytest_plugin.add_option_items(session, items)


@pytest.fixture
def autodag_registry() -> Iterator[Callable[..., Registry]]:
    """``autodag_registry(*names)``: a registry of only those plugins, for the test."""
    from autodag import pytest_plugin

    yield from pytest_plugin.registry_factory()


@pytest.fixture
def autodag_plugins() -> Registry:
    """The registry the test runs with (only the marker's plugins, when it has one)."""
    from autodag import get_registry

    return get_registry()


@pytest.fixture
def autodag_op_check(request: pytest.FixtureRequest) -> Callable[..., OpCheckResult]:
    """``autodag_op_check(**check_op_options)``: check_op on this test's op and sample."""
    from autodag import pytest_plugin

    return pytest_plugin.op_check(request)
