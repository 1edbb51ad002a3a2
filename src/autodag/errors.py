"""Exception and warning classes raised by autodag."""

from __future__ import annotations

__all__ = [
    "AutodagError",
    "GradientError",
    "GraphMismatchError",
    "MissingFeedError",
    "OpDefinitionError",
    "OpExecutionError",
    "OpNotFoundError",
    "PluginConflictError",
    "PluginLoadError",
    "PluginWarning",
    "ShapeMismatchError",
]


class AutodagError(Exception):
    """Base class of every error autodag raises on purpose."""


class OpDefinitionError(AutodagError, ValueError):
    """An op definition is malformed (bad name, arity, rule, attribute)."""


class OpNotFoundError(AutodagError, AttributeError):
    """No registered op has the requested name."""


class PluginConflictError(AutodagError):
    """Two plugins define an op of the same name and neither overrides."""


class PluginLoadError(AutodagError):
    """A plugin failed to load or returned malformed op definitions."""


class PluginWarning(UserWarning):
    """A plugin was skipped because it failed to load or was malformed."""


class GraphMismatchError(AutodagError, ValueError):
    """Nodes of different graphs were combined."""


class MissingFeedError(AutodagError, KeyError):
    """A placeholder needed by the computation was not fed a value."""

    def __str__(self) -> str:
        # KeyError quotes its message; this one is a sentence, not a key.
        return str(self.args[0]) if self.args else ""


class OpExecutionError(AutodagError):
    """An op's forward rule failed on the values it was given."""


class ShapeMismatchError(OpExecutionError, ValueError):
    """An op was given inputs of incompatible shapes."""


class GradientError(AutodagError, ValueError):
    """A backward rule returned the wrong number or shapes of gradients."""
