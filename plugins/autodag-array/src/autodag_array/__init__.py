"""autodag-array: array ops for autodag, found through the ``autodag`` entry point.

Installing the distribution is all it takes; ``x.sum(axis=0)``, ``x.T``, ``x[1:, idx]`` and
``autodag.ops.concatenate([a, b])`` then work. Axes are taken as NumPy takes them (None,
an int or, for reductions, a tuple of ints; negative ones count from the end), and an
axis NumPy refuses is an ``autodag.ShapeMismatchError`` naming the op, axis and shape.
The ops are defined in :mod:`autodag_array.plugin` (by concern: reductions, statistics,
shaping, reorder, indexing, along, gather). ``autodag_array.split`` and
``autodag_array.array_split`` return Python lists of getitem nodes (an op has one output).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "array_split", "split"]


def __getattr__(name: str) -> Any:
    # Imported on first use: autodag itself imports this package while loading plugins.
    if name in ("split", "array_split"):
        from . import splitting

        return getattr(splitting, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
