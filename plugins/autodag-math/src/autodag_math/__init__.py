"""autodag-math: elementwise math ops for autodag, found through the ``autodag`` entry point.

Installing the distribution is all it takes; ``autodag.ops.exp(x)``, ``abs(x)`` and
``x < y`` then work. The ops are defined in :mod:`autodag_math.plugin`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
