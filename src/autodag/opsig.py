"""An op's call signature, as ``inspect`` and type checkers see it, from its OpDef.

``signature_of(opdef)`` is the ``inspect.Signature`` of ``autodag.ops.<name>``: the
inputs (by their ``input_names``, positional-only where the op names none; one sequence
``arrays`` for a variadic op), then the attributes with their defaults, then the
keyword-only ``name`` every op takes. ``stub_line(opdef)`` is the same as a line of
``autodag/ops.pyi``, with types: inputs are ``Input`` (a node, an array or a number),
attributes are typed by their NumPy name (``axis``, ``keepdims``, ``shape``...) or else
by their default's type.
"""

from __future__ import annotations

import inspect
from typing import Any, Final

from .opdef import REQUIRED, OpDef

__all__ = ["signature_of", "stub_line"]

#: NumPy's usual attribute names and the types NumPy documents for them.
_TYPES: Final = {
    "axis": "int | tuple[int, ...] | None",
    "axes": "Any",
    "keepdims": "bool",
    "shape": "int | Sequence[int]",
    "ddof": "int | float",
    "k": "int",
    "n": "int",
    "offset": "int",
    "axis1": "int",
    "axis2": "int",
    "source": "int | Sequence[int]",
    "destination": "int | Sequence[int]",
    "index": "Any",
    "subscripts": "str",
    "ord": "int | float | str | None",
    "decimals": "int",
    "stride": "int | tuple[int, ...] | None",
    "padding": "int | tuple[int, ...]",
    "dilation": "int | tuple[int, ...]",
    "kernel_size": "int | tuple[int, ...]",
    "normalized_shape": "int | Sequence[int] | None",
}
_BY_DEFAULT: Final = {bool: "bool", int: "int", float: "float", str: "str"}


def _input_names(opdef: OpDef) -> tuple[list[str], bool]:
    """The inputs' parameter names and whether they may be passed by keyword."""
    if opdef.arity is None:
        return ["arrays"], False
    if len(opdef.input_names) == opdef.arity:
        return list(opdef.input_names), True
    return [f"x{k}" if opdef.arity > 1 else "x" for k in range(opdef.arity)], False


def _attributes(opdef: OpDef) -> list[tuple[str, Any, bool]]:
    """(name, default, keyword-only) of each attribute: a required one after one with a
    default cannot be positional in a Python signature, so it and the rest are
    keyword-only there."""
    out, defaulted, keyword_only = [], False, False
    for attr, default in opdef.attributes.items():
        if default is REQUIRED and defaulted:
            keyword_only = True
        defaulted = defaulted or default is not REQUIRED
        out.append((attr, default, keyword_only))
    return out


def signature_of(opdef: OpDef) -> inspect.Signature:
    """The ``inspect.Signature`` of ``autodag.ops.<opdef.name>``."""
    if opdef.numpy_call is not None:  # NumPy's own form, which the op maps itself
        return inspect.Signature([
            inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
            inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, default=None),
            inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])
    names, keyword = _input_names(opdef)
    kind = (inspect.Parameter.POSITIONAL_OR_KEYWORD if keyword
            else inspect.Parameter.POSITIONAL_ONLY)
    params = [inspect.Parameter(n, kind) for n in names]
    for attr, default, keyword_only in _attributes(opdef):
        params.append(inspect.Parameter(
            attr, inspect.Parameter.KEYWORD_ONLY if keyword_only
            else inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=inspect.Parameter.empty if default is REQUIRED else default))
    params.append(inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, default=None))
    return inspect.Signature(params)


def _attr_type(attr: str, default: Any) -> str:
    if attr in _TYPES:
        return _TYPES[attr]
    t = _BY_DEFAULT.get(type(default))
    if t is None:
        return "Any"
    return t if default is not None else f"{t} | None"


def stub_line(opdef: OpDef) -> str:
    """``def <name>(...) -> Operator: ...``, the op's line in ``autodag/ops.pyi``."""
    if opdef.numpy_call is not None:
        return (f"def {opdef.name}(*args: Any, name: str | None = None, **kwargs: Any)"
                " -> Operator: ...")
    names, keyword = _input_names(opdef)
    if opdef.arity is None:
        parts = ["arrays: Sequence[Input]", "/"]
    else:
        parts = [f"{n}: Input" for n in names] + ([] if keyword or not names else ["/"])
    star = False
    for attr, default, keyword_only in _attributes(opdef):
        if keyword_only and not star:
            parts.append("*")
            star = True
        t = _attr_type(attr, default)
        parts.append(f"{attr}: {t}" if default is REQUIRED else f"{attr}: {t} = ...")
    parts += ([] if star else ["*"]) + ["name: str | None = None"]
    return f"def {opdef.name}({', '.join(parts)}) -> Operator: ..."
