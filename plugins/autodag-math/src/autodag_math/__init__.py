"""autodag-math: elementwise math ops for autodag, found through the ``autodag`` entry point.

Installing the distribution is all it takes; ``autodag.ops.exp(x)``, ``abs(x)`` and
``x < y`` then work. The hook is in :mod:`autodag_math.plugin`, which lists
the ops of every module of the package.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
