"""autodag-array: array ops for autodag, found through the ``autodag`` entry point.

Installing the distribution is all it takes; ``x.sum(axis=0)``, ``x.T``, ``x[1:, idx]`` and
``autodag.ops.concatenate([a, b])`` then work. Axes are taken as NumPy takes them (None,
an int or, for reductions, a tuple of ints; negative ones count from the end), and an
axis NumPy refuses is an ``autodag.ShapeMismatchError`` naming the op, axis and shape.
The ops are defined in :mod:`autodag_array.plugin` (by concern: reductions, shaping,
indexing).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
