"""Whether Graphviz is here, and the marker for tests that render with it."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

HAVE_GRAPHVIZ = shutil.which("dot") is not None and importlib.util.find_spec("graphviz") is not None
# CI sets this so that a missing Graphviz fails the rendering tests instead of skipping them.
REQUIRE_GRAPHVIZ = os.environ.get("AUTODAG_REQUIRE_GRAPHVIZ", "") not in ("", "0")
needs_graphviz = pytest.mark.skipif(
    not HAVE_GRAPHVIZ and not REQUIRE_GRAPHVIZ,
    reason="Graphviz ('dot' program and graphviz package) not installed: "
    "apt-get install graphviz; pip install 'autodag[viz]'",
)
