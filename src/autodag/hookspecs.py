"""Hook specifications: what an autodag plugin may implement.

A plugin is any module or object with functions marked ``@autodag.hookimpl``; a
distribution makes one discoverable by declaring it in the ``autodag`` entry-point
group::

    [project.entry-points.autodag]
    myops = "myops.plugin"
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import pluggy

from .kernelform import KernelForm
from .opdef import OpDef
from .rewrite import Rewrite

__all__ = [
    "PROJECT_NAME", "autodag_kernel_forms", "autodag_onnx_converters",
    "autodag_register_ops", "autodag_rewrites", "hookimpl", "hookspec",
]

PROJECT_NAME: Final = "autodag"

hookspec: Final = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a function of a plugin as the implementation of an autodag hook.
hookimpl: Final = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def autodag_register_ops() -> Iterable[OpDef]:  # type: ignore[empty-body]
    """Return the op definitions this plugin provides.

    Example::

        import autodag
        from autodag import OpDef

        @autodag.hookimpl
        def autodag_register_ops():
            return [
                OpDef(
                    name="square", arity=1,
                    forward=lambda a: a * a,
                    backward=(lambda xp, g, out, a: 2 * g * a,),
                )
            ]
    """


@hookspec
def autodag_onnx_converters() -> Mapping[str, Callable[..., Any]]:  # type: ignore[empty-body]
    """Return the ONNX converters this plugin provides: op name -> converter.

    A converter takes the export context of one node (``autodag.onnx.Context``) and
    returns the name of the ONNX value it computed. It must not import ``onnx`` at
    module import (the context builds the ONNX nodes), so the plugin loads without the
    extra. Wrap a converter in ``autodag.onnx.Override`` to replace another plugin's.

    Example::

        @autodag.hookimpl
        def autodag_onnx_converters():
            return {"square": lambda ctx: ctx.op("Mul", [ctx.input(0), ctx.input(0)])}
    """


@hookspec
def autodag_rewrites() -> Mapping[str, Rewrite]:  # type: ignore[empty-body]
    """Return the graph rewrites this plugin provides: rewrite name -> ``Rewrite``.

    ``autodag.compile`` offers each operator node to the rewrites of its op before
    planning; ``AUTODAG_DISABLE_REWRITES=name,...`` and ``compile(...,
    disable_rewrites=[...])`` turn one off by name. Wrap a rewrite in
    ``autodag.hooktables.Override`` to replace another plugin's of the same name.

    Example::

        @autodag.hookimpl
        def autodag_rewrites():
            def square_of_sqrt(ctx, node):
                (a,) = node.inputs
                if ctx.op_of(node) == "square" and ctx.op_of(a) == "sqrt":
                    return None  # not exact for negative inputs: leave it
                return None
            return {"square_of_sqrt": autodag.Rewrite(("square",), square_of_sqrt,
                                                      "nothing, an example")}
    """


@hookspec
def autodag_kernel_forms() -> Mapping[str, KernelForm]:  # type: ignore[empty-body]
    """Return the kernel forms of this plugin's ops: op name -> ``KernelForm``.

    With the ``fusion`` extra (numba) installed, ``autodag.compile`` fuses chains of
    ops that have forms into one compiled elementwise kernel per chain, for large
    arrays. A form must compute on scalars what the op's forward rule computes on
    arrays; ops without one run as before. Wrap a form in
    ``autodag.hooktables.Override`` to replace another plugin's form of the same op.

    Example::

        @autodag.hookimpl
        def autodag_kernel_forms():
            return {"square": autodag.KernelForm("{0} * {0}")}
    """
