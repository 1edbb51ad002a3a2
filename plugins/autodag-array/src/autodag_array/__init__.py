"""autodag-array: array ops for autodag, found through the ``autodag`` entry point.

Installing the distribution is all it takes; ``x.sum(axis=0)``, ``x.T``, ``x[1:, idx]`` and
``autodag.ops.concatenate([a, b])`` then work.
The ops are defined in :mod:`autodag_array.plugin`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
