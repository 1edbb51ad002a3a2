"""The op definition: what a plugin hands to autodag to add a differentiable operator.

An op is data, not a subclass. Its rules are plain functions:

* ``forward(*inputs, **attrs) -> value`` computes the op on NumPy values (or Python
  scalars, which it should keep as scalars where it can: that is the fast path).
* a backward rule is a vector-Jacobian product written against an array namespace
  ``xp`` handed in, so the same rule serves numbers (``xp`` wraps NumPy) and symbols
  (``xp`` builds graph nodes, for higher-order derivatives). Either one rule per input,
  ``vjp_i(xp, g, out, *inputs, **attrs) -> gradient`` (``None`` for an input that is not
  differentiable), or one rule for all inputs returning a tuple. The engine sums each
  gradient down to its input's shape, so a rule may return a broadcast gradient.
"""

from __future__ import annotations

import ast
import keyword
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeAlias

import numpy as np

from .errors import ArgumentError, OpDefinitionError

__all__ = [
    "REQUIRED",
    "BackwardRule",
    "ForwardRule",
    "JvpRule",
    "OpDef",
    "Sample",
    "VjpRule",
]

ForwardRule: TypeAlias = Callable[..., Any]
#: ``vjp(xp, g, out, *inputs, **attrs) -> gradient of one input``
VjpRule: TypeAlias = Callable[..., Any]
#: ``backward(xp, g, out, *inputs, **attrs) -> tuple of gradients, one per input``
BackwardRule: TypeAlias = Callable[..., Sequence[Any]]
#: ``jvp(xp, tangents, out, *inputs, **attrs) -> tangent of the output`` (``None`` tangents
#: stand for zero).
JvpRule: TypeAlias = Callable[..., Any]

_NAME_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_ATTRS: Final = frozenset({"name"})


class _Required:
    """Sentinel type for an attribute without a default."""

    _instance: _Required | None = None

    def __new__(cls) -> _Required:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REQUIRED"


#: Default value of an attribute the caller must always give.
REQUIRED: Final = _Required()


@dataclass(frozen=True)
class Sample:
    """One set of example inputs (and attributes) for checking an op's gradients."""

    inputs: tuple[Any, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class OpDef:
    """A differentiable operator, validated when it is built.

    >>> import numpy as np
    >>> square = OpDef(
    ...     name="square", arity=1,
    ...     forward=lambda a: a * a,
    ...     backward=(lambda xp, g, out, a: 2 * g * a,),
    ... )
    """

    name: str
    arity: int | None
    forward: ForwardRule
    #: One vjp per input (``None`` where not differentiable), or one rule returning a
    #: tuple, or ``None`` when the op is not differentiable at all.
    backward: Sequence[VjpRule | None] | BackwardRule | None
    #: Static, non-differentiable parameters in positional order, with defaults
    #: (``REQUIRED`` for none). Positional arguments after the inputs fill them in order.
    attributes: Mapping[str, Any] = field(default_factory=dict)
    #: Names of the inputs, so they may also be passed by keyword (NumPy's names).
    input_names: tuple[str, ...] = ()
    #: Prefix of default node names (``mul`` gives ``mul/0``); the op name by default.
    prefix: str = ""
    #: True when the backward rule uses only ``xp`` and operators, so it can build graph
    #: nodes (second and higher derivatives). False for NumPy-only rules.
    symbolic: bool = True
    #: True when ``forward`` runs on any array-API backend (Dask, CuPy, ...): it takes
    #: its namespace from its inputs (``autodag.backend.namespace_of``) and calls no
    #: NumPy function on them. False: NumPy arrays and Python numbers only; on another
    #: backend the op is a ``BackendError`` naming it, never a silent conversion.
    array_api: bool = False
    #: Optional forward-mode rule; without it forward mode is derived from ``backward``.
    jvp: JvpRule | None = None
    #: Example inputs for ``autodag.testing.check_op`` and ``autodag check``.
    samples: Callable[[np.random.Generator], Iterable[Sample]] | None = None
    #: Replace an op of the same name from another plugin instead of conflicting.
    override: bool = False
    #: Optional Python expression equal to ``forward`` for every operand it accepts, with
    #: ``{0}``, ``{1}``... for the inputs (``"{0} + {1}"``): compiled programs write it out
    #: instead of calling ``forward``. Only operators, numbers and ``xp.<op>(...)``.
    inline: str | None = None
    #: Optional expressions equal to the per-input backward rules (``None`` where there is
    #: none), using ``{g}``, ``{out}``, ``{0}``, ``{1}``... (``("{g} * {1}", "{g} * {0}")``).
    inline_vjps: tuple[str | None, ...] | None = None
    doc: str = ""
    #: Optional: maps a call written as NumPy writes it to this op's (args, kwargs), for
    #: NumPy signatures the inputs-then-attributes form cannot take (numpy.einsum's
    #: ``einsum("ij,jk", a, b)``). Returns the call unchanged when it is already the op's.
    numpy_call: Callable[[tuple[Any, ...], dict[str, Any]],
                         tuple[tuple[Any, ...], dict[str, Any]]] | None = None
    #: Optional: what ``numpy.<name>(...)`` called on nodes returns, built from ops, for
    #: NumPy functions whose result is not one node (``numpy.linalg.slogdet``'s pair
    #: ``(sign, logabsdet)``). Without it the call builds this op's node.
    numpy_function: Callable[..., Any] | None = None
    _vjps: tuple[VjpRule | None, ...] | None = field(init=False, repr=False, default=None)
    _joint: BackwardRule | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self._check_name(self.name, "op name")
        if self.arity is not None and (
            isinstance(self.arity, bool) or not isinstance(self.arity, int) or self.arity < 0
        ):
            raise OpDefinitionError(
                f"op {self.name!r}: arity must be a non-negative int or None (variadic), "
                f"got {self.arity!r}"
            )
        if not callable(self.forward):
            raise OpDefinitionError(
                f"op {self.name!r}: forward must be callable, got {type(self.forward).__name__}"
            )
        self._set_backward()
        if self.jvp is not None and not callable(self.jvp):
            raise OpDefinitionError(f"op {self.name!r}: jvp must be callable or None")
        if self.samples is not None and not callable(self.samples):
            raise OpDefinitionError(
                f"op {self.name!r}: samples must be a callable taking a numpy Generator"
            )
        self._check_inline()
        if not isinstance(self.attributes, Mapping):
            raise OpDefinitionError(f"op {self.name!r}: attributes must be a mapping")
        for attr in self.attributes:
            self._check_name(attr, "attribute name")
            if attr in _RESERVED_ATTRS:
                raise OpDefinitionError(f"op {self.name!r}: attribute name {attr!r} is reserved")
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))
        names = tuple(self.input_names)
        if names:
            if self.arity is None or len(names) != self.arity:
                raise OpDefinitionError(
                    f"op {self.name!r}: input_names has {len(names)} names for arity "
                    f"{self.arity}"
                )
            for n in names:
                self._check_name(n, "input name")
            if set(names) & set(self.attributes):
                raise OpDefinitionError(
                    f"op {self.name!r}: input and attribute names overlap: "
                    f"{sorted(set(names) & set(self.attributes))}"
                )
        object.__setattr__(self, "input_names", names)
        if not self.prefix:
            object.__setattr__(self, "prefix", self.name)
        self._check_name(self.prefix, "prefix")

    def _check_name(self, value: object, what: str) -> None:
        if not isinstance(value, str) or not _NAME_RE.match(value) or keyword.iskeyword(value):
            raise OpDefinitionError(
                f"op {getattr(self, 'name', '?')!r}: {what} must be a Python identifier, "
                f"got {value!r}"
            )

    def _set_backward(self) -> None:
        bw = self.backward
        if bw is None:
            return
        if callable(bw):
            object.__setattr__(self, "_joint", bw)
            return
        if not isinstance(bw, (tuple, list)):
            raise OpDefinitionError(
                f"op {self.name!r}: backward must be a callable, a sequence of per-input "
                f"callables (or None), or None; got {type(bw).__name__}"
            )
        rules = tuple(bw)
        if self.arity is None:
            raise OpDefinitionError(
                f"op {self.name!r}: a variadic op needs one backward rule returning a tuple"
            )
        if len(rules) != self.arity:
            raise OpDefinitionError(
                f"op {self.name!r}: backward has {len(rules)} rules for {self.arity} inputs"
            )
        for i, r in enumerate(rules):
            if r is not None and not callable(r):
                raise OpDefinitionError(
                    f"op {self.name!r}: backward rule for input {i} is not callable: {r!r}"
                )
        object.__setattr__(self, "_vjps", rules)

    def _check_inline(self) -> None:
        n = self.arity
        if self.inline is not None:
            if n is None:
                raise OpDefinitionError(f"op {self.name!r}: a variadic op cannot be inline")
            check_template(self.inline, n, has_g=False, where=f"op {self.name!r} inline")
        if self.inline_vjps is None:
            return
        vjps = tuple(self.inline_vjps)
        if self._vjps is None or len(vjps) != len(self._vjps):
            raise OpDefinitionError(
                f"op {self.name!r}: inline_vjps needs one entry per per-input backward rule"
            )
        for k, (tpl, rule) in enumerate(zip(vjps, self._vjps)):
            if (tpl is None) != (rule is None):
                raise OpDefinitionError(
                    f"op {self.name!r}: inline_vjps[{k}] and backward[{k}] must both be given "
                    "or both be None"
                )
            if tpl is not None:
                assert n is not None
                check_template(tpl, n, has_g=True, where=f"op {self.name!r} inline_vjps[{k}]")
        object.__setattr__(self, "inline_vjps", vjps)

    @property
    def vjps(self) -> tuple[VjpRule | None, ...] | None:
        """Per-input rules, or None when the op has one joint rule (or none)."""
        return self._vjps

    @property
    def joint_backward(self) -> BackwardRule | None:
        """The single rule returning every gradient, when the op has one."""
        return self._joint

    @property
    def differentiable(self) -> bool:
        """Whether any input has a gradient rule."""
        if self._joint is not None:
            return True
        return self._vjps is not None and any(r is not None for r in self._vjps)

    def bind(
        self, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Split a NumPy-style call into (inputs, attributes), checking both."""
        if not kwargs and not self.attributes and len(args) == self.arity:
            return tuple(args), {}  # the common case, asked for every node built
        if self.numpy_call is not None:
            args, kwargs = self.numpy_call(tuple(args), dict(kwargs))
        attr_names = list(self.attributes)
        if self.arity is None:
            if not args:
                raise ArgumentError(f"{self.name}() takes a sequence of inputs as first argument")
            seq = args[0]
            if isinstance(seq, (str, bytes)) or not isinstance(seq, Sequence):
                raise ArgumentError(
                    f"{self.name}() takes a sequence of inputs as first argument, "
                    f"got {type(seq).__name__}"
                )
            inputs: tuple[Any, ...] = tuple(seq)
            rest = args[1:]
        else:
            inputs_l = list(args[: self.arity])
            rest = args[self.arity :]
            for n in self.input_names[: len(inputs_l)]:
                if n in kwargs:
                    raise ArgumentError(f"{self.name}() got multiple values for argument {n!r}")
            for n in self.input_names[len(inputs_l) :]:
                if n in kwargs:
                    inputs_l.append(kwargs[n])
            if len(inputs_l) != self.arity:
                raise ArgumentError(
                    f"{self.name}() takes {self.arity} input(s), got {len(inputs_l)}"
                )
            inputs = tuple(inputs_l)
        if len(rest) > len(attr_names):
            extra = len(rest) - len(attr_names)
            raise ArgumentError(
                f"{self.name}() got {extra} extra positional argument{'s' * (extra != 1)}: "
                f"after its input(s) it takes at most {len(attr_names)} "
                f"({', '.join(attr_names) or 'no attributes'})"
            )
        attrs: dict[str, Any] = dict(zip(attr_names, rest, strict=False))
        for k, v in kwargs.items():
            if k in self.input_names:
                continue
            if k not in self.attributes:
                raise ArgumentError(
                    f"{self.name}() got an unexpected keyword argument {k!r}; "
                    f"its attributes are {attr_names}"
                )
            if k in attrs:
                raise ArgumentError(f"{self.name}() got multiple values for argument {k!r}")
            attrs[k] = v
        for k, default in self.attributes.items():
            if k not in attrs:
                if default is REQUIRED:
                    raise ArgumentError(f"{self.name}() missing required argument {k!r}")
                attrs[k] = default
        return inputs, attrs



_TEMPLATE_FIELD: Final = re.compile(r"\{(g|out|\d+)\}")
_TEMPLATE_NODES: Final = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop, ast.Load,
    ast.Name, ast.Constant, ast.Attribute, ast.Call, ast.keyword, ast.Tuple,
)


def template_fields(template: str) -> list[str]:
    """The fields a template reads, in order of first use: ``g``, ``out``, ``0``, ``1``..."""
    return list(dict.fromkeys(_TEMPLATE_FIELD.findall(template)))


def check_template(template: str, arity: int, *, has_g: bool, where: str) -> None:
    """Refuse a template that is not a plain expression over its fields and ``xp`` ops."""
    if not isinstance(template, str):
        raise OpDefinitionError(f"{where}: must be a string, got {type(template).__name__}")
    allowed = {f"_t_{i}" for i in range(arity)} | ({"_t_g", "_t_out"} if has_g else set())
    code = _TEMPLATE_FIELD.sub(lambda m: f"_t_{m.group(1)}", template)
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError as exc:
        raise OpDefinitionError(f"{where}: {template!r} is not an expression: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _TEMPLATE_NODES):
            raise OpDefinitionError(
                f"{where}: {type(node).__name__} is not allowed in {template!r}"
            )
        if isinstance(node, ast.Name) and node.id not in allowed and node.id != "xp":
            raise OpDefinitionError(f"{where}: unknown field or name {node.id!r} in {template!r}")
        if isinstance(node, ast.Attribute) and not (
            isinstance(node.value, ast.Name) and node.value.id == "xp"
        ):
            raise OpDefinitionError(f"{where}: only xp.<op> attributes are allowed: {template!r}")
        if isinstance(node, ast.Call) and not isinstance(node.func, ast.Attribute):
            raise OpDefinitionError(f"{where}: only xp.<op>(...) calls are allowed: {template!r}")
        if isinstance(node, ast.Constant) and (
            isinstance(node.value, bool) or not isinstance(node.value, (int, float))
        ):
            raise OpDefinitionError(f"{where}: only numeric constants are allowed: {template!r}")
