"""Exception and warning classes raised by autodag."""

from __future__ import annotations

__all__ = [
    "ArgumentError",
    "AutodagError",
    "ExportError",
    "FeedError",
    "GradientError",
    "GraphMismatchError",
    "LoadError",
    "MissingFeedError",
    "NumpyFunctionError",
    "OpConflictError",
    "OpDefinitionError",
    "OpExecutionError",
    "OpNotFoundError",
    "PluginConflictError",
    "PluginLoadError",
    "PluginWarning",
    "RewriteError",
    "SaveError",
    "ShapeMismatchError",
    "SymbolicGradientError",
]


class AutodagError(Exception):
    """Base class of every error autodag raises on purpose."""


class ArgumentError(AutodagError, TypeError, ValueError):
    """A function, op or node was called with arguments it cannot take.

    Also a ``TypeError`` and a ``ValueError``, so ``except`` clauses written for the
    built-in errors keep working.
    """


class ExportError(AutodagError, ValueError):
    """A graph cannot be exported (an op without converter, onnx not installed...)."""


class FeedError(ArgumentError):
    """A fed value (``feed_dict`` entry, compiled-program input) is wrong for its node."""


class OpDefinitionError(AutodagError, ValueError):
    """An op definition is malformed (bad name, arity, rule, attribute)."""


class OpNotFoundError(AutodagError, AttributeError):
    """No registered op has the requested name."""


class NumpyFunctionError(AutodagError, TypeError):
    """A NumPy function was given a node but no op stands for it (or NumPy asked for the
    node's value as an array: ``np.asarray(node)``; evaluate it instead)."""


class PluginConflictError(AutodagError):
    """Two plugins define an op of the same name and neither overrides."""


class OpConflictError(PluginConflictError, OpNotFoundError):
    """The op asked for is defined by two plugins, so it is left out until that is resolved."""


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


class SymbolicGradientError(GradientError):
    """An op's backward rule cannot build graph nodes (NumPy-only rule or unknown xp name)."""


class SaveError(AutodagError, ValueError):
    """A graph cannot be saved (a value or attribute a graph file cannot hold)."""


class LoadError(AutodagError, ValueError):
    """A graph file is malformed, truncated, of another version or names what is missing."""


class RewriteError(AutodagError):
    """A graph rewrite failed or returned a wrong replacement (named, with how to turn
    it off)."""
