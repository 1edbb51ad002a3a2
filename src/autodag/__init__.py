"""autodag: plugin-extensible, define-then-run reverse-mode automatic differentiation.

>>> import autodag as ad
>>> with ad.Graph() as g:
...     x = ad.Variable(0.9, name="x")
...     y = ad.Variable(0.4, name="y")
...     c = ad.Constant(1.3, name="c")
...     z = (x * y + c) * c + x
>>> [round(float(v), 6) for v in ad.grad(z, [x, y, c])]
[1.52, 1.17, 2.96]
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from . import hookspecs, ops
from . import shapes as _shapes  # noqa: F401  # installs the static shapes of Operator.shape
from .backend import BackendError
from .errors import (
    ArgumentError,
    AutodagError,
    ExportError,
    FeedError,
    GradientError,
    GraphMismatchError,
    LoadError,
    MissingFeedError,
    NumpyFunctionError,
    OpConflictError,
    OpDefinitionError,
    OpExecutionError,
    OpNotFoundError,
    PluginConflictError,
    PluginLoadError,
    PluginWarning,
    RewriteError,
    SaveError,
    ShapeMismatchError,
)
from .execute import backward_pass, evaluate, forward_pass, grad, topological_sort
from .graph import Graph, get_default_graph
from .hookspecs import hookimpl
from .kernelform import KernelForm
from .nodes import Constant, Node, Operator, Placeholder, Variable
from .opdef import REQUIRED, OpDef, Sample
from .registry import (
    get_plugin_manager,
    get_registry,
    register_plugin,
    reset_plugins,
    unregister_plugin,
)
from .rewrite import Rewrite

if _TYPE_CHECKING:
    from . import onnx, optim, testing, viz
    from .compiled import Program, compile
    from .debugnans import NonFiniteError, debug_nans
    from .forward import jvp, jvp_nodes
    from .saving import Loaded, load, save
    from .shapes import ShapeInferenceError
    from .symbolic import (
        SymbolicGradientError,
        gradients,
        hessian,
        hessian_vector_product,
        jacobian,
    )

# The compiler, symbolic and forward-mode modules load on first use, which keeps
# `import autodag` cheap for programs that never touch them.
_LAZY = {
    "Program": "compiled",
    "compile": "compiled",
    "NonFiniteError": "debugnans",
    "debug_nans": "debugnans",
    "jvp": "forward",
    "jvp_nodes": "forward",
    "Loaded": "saving",
    "load": "saving",
    "save": "saving",
    "ShapeInferenceError": "shapes",
    "SymbolicGradientError": "symbolic",
    "gradients": "symbolic",
    "hessian": "symbolic",
    "hessian_vector_product": "symbolic",
    "jacobian": "symbolic",
}


# Documented submodules, reachable as attributes (``ad.optim.Adam``) without importing
# them (or what they import: graphviz, the compiler) with autodag itself.
_SUBMODULES = frozenset({"onnx", "optim", "testing", "viz"})


def __getattr__(name: str) -> _Any:
    if name in _SUBMODULES:
        return _importlib.import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'autodag' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)


__version__ = "0.1.0"

__all__ = [
    "REQUIRED",
    "ArgumentError",
    "AutodagError",
    "BackendError",
    "Constant",
    "ExportError",
    "FeedError",
    "GradientError",
    "Graph",
    "GraphMismatchError",
    "KernelForm",
    "LoadError",
    "Loaded",
    "MissingFeedError",
    "Node",
    "NonFiniteError",
    "NumpyFunctionError",
    "OpConflictError",
    "OpDef",
    "OpDefinitionError",
    "OpExecutionError",
    "OpNotFoundError",
    "Operator",
    "Placeholder",
    "PluginConflictError",
    "PluginLoadError",
    "PluginWarning",
    "Program",
    "Rewrite",
    "RewriteError",
    "Sample",
    "SaveError",
    "ShapeInferenceError",
    "ShapeMismatchError",
    "SymbolicGradientError",
    "Variable",
    "__version__",
    "backward_pass",
    "compile",
    "debug_nans",
    "evaluate",
    "forward_pass",
    "get_default_graph",
    "get_plugin_manager",
    "get_registry",
    "grad",
    "gradients",
    "hessian",
    "hessian_vector_product",
    "hookimpl",
    "hookspecs",
    "jacobian",
    "jvp",
    "jvp_nodes",
    "load",
    "onnx",
    "ops",
    "optim",
    "register_plugin",
    "reset_plugins",
    "save",
    "testing",
    "topological_sort",
    "unregister_plugin",
    "viz",
]
