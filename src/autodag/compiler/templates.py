"""Ops' inline templates made ready for generated code, once per op per registry.

A template (``"{g} * {1}"``) becomes a format string over local names, with each
``xp.<name>`` bound to a name of the plan's namespace holding what the numeric ``xp``
gives, so generated code calls it without ``xp`` or its wrapper. The results are kept
in the registry snapshot they were made under (``Registry.derived``), so every plan of
one snapshot shares them.
"""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

from ..opdef import OpDef
from ..registry import Registry

__all__ = ["OpTemplates", "Tpl", "Written", "derived", "op_templates", "written"]

_FIELD: Final = re.compile(r"\{(g|out|\d+)\}")
_FILLED: Final = re.compile(r"\b_t_(g|out|\d+)\b")
_KEY: Final = "autodag.compiler.templates"
_Q: Final = re.compile(r"\b_q\b")
_lock = threading.Lock()


class Tpl(NamedTuple):
    """A template ready to write out."""

    #: A format string over ``{g}``, ``{out}``, ``{0}``, ``{1}``...
    fmt: str
    #: The fields it reads: ``g``, ``out``, ``0``, ``1``...
    fields: frozenset[str]
    #: Operators only, no ``**``: Python numbers in, a Python number out (or an
    #: ArithmeticError), and never a NumPy warning. A call (a forward rule, an ``xp``
    #: function) may answer in NumPy, and ``**`` may answer a complex number.
    pure: bool
    #: Namespace names the code reads, with their values.
    names: tuple[tuple[str, Any], ...]

    def fill(self, args: Sequence[str], g: str = "", out: str = "") -> str:
        """The expression over these local names."""
        return self.fmt.format(*args, g=g, out=out)


class OpTemplates(NamedTuple):
    """An op's forward template (None: called) and per-input rule templates."""

    forward: Tpl | None
    vjps: tuple[Tpl | None, ...]

    def vjp(self, k: int) -> Tpl | None:
        """The template of input ``k``'s rule, if the op declares one."""
        return self.vjps[k] if k < len(self.vjps) else None


class Written(NamedTuple):
    """An op's backward rules as written for the inputs that want gradients."""

    #: What two or more of the rules compute in common, as a format string, or None.
    shared: str | None
    #: Per input: the rule's format string (reading ``_q`` when ``shared`` is given).
    codes: tuple[str | None, ...]
    #: Per input: whether the rule's template is pure (``Tpl.pure``).
    pure: tuple[bool, ...]
    #: Whether every wanted rule is written out; and all of them pure.
    complete: bool
    all_pure: bool
    #: ``codes`` for one expression per rule: the first rule reading ``_q`` computes it
    #: where first read (``(_q := ...)``; operands run left to right).
    walrus: tuple[str | None, ...] = ()
    #: Namespace names the written rules read, with their values.
    names: tuple[tuple[str, Any], ...] = ()
    #: Per input: the rule's code is an operator applied last (``{g} * {1}``), so on a
    #: NumPy array it answers a new array no one else holds.
    fresh: tuple[bool, ...] = ()


class _XpBinder(ast.NodeTransformer):
    """Rewrite ``xp.<name>`` to a namespace name holding what the numeric ``xp`` gives."""

    def __init__(self, registry: Registry) -> None:
        self.xp, self.ops = registry.numeric, registry.ops
        self.names: dict[str, Any] = {}
        self.ok = True

    def visit_Call(self, node: ast.Call) -> ast.AST:
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            reg = self.ops.get(f.attr)
            op: OpDef | None = None if reg is None else reg.opdef
            if (op is not None and op.arity == len(node.args) and not node.keywords
                    and not op.attributes):
                # What ``xp.<op>(inputs...)`` runs, without the namespace's wrapper.
                name = f"_xf_{f.attr}"
                self.names[name] = op.forward
                node.func = ast.copy_location(ast.Name(name, ast.Load()), f)
                node.args = [self.visit(a) for a in node.args]
                return node
        return self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        assert isinstance(node.value, ast.Name)  # check_template allows only xp.<name>
        try:
            value = getattr(self.xp, node.attr)
        except AttributeError:
            self.ok = False  # the rule itself would fail: let the plan call it
            return node
        name = f"_xp_{node.attr}"
        self.names[name] = value
        return ast.copy_location(ast.Name(name, ast.Load()), node)


def _fmt(code: str) -> str:
    """``code`` as a format string (a template holds no braces of its own)."""
    return _FILLED.sub(r"{\1}", code)


def _ready(template: str, registry: Registry) -> Tpl | None:
    """A template made ready, or None when an ``xp`` name does not resolve."""
    tree = ast.parse(_FIELD.sub(lambda m: f"_t_{m.group(1)}", template), mode="eval").body
    pure = not any(isinstance(n, (ast.Call, ast.Attribute, ast.Pow)) for n in ast.walk(tree))
    binder = _XpBinder(registry)
    tree = binder.visit(tree)
    if not binder.ok:
        return None
    code = ast.unparse(tree)
    return Tpl(_fmt(code), frozenset(_FILLED.findall(code)), pure,
               tuple(sorted(binder.names.items())))


def derived(registry: Registry, what: str) -> dict[Any, Any]:
    """The compiler's cache of ``what`` it derives from this registry snapshot."""
    key = f"{_KEY}.{what}"
    got: dict[Any, Any] | None = registry.derived.get(key)
    if got is None:
        with _lock:
            got = registry.derived.setdefault(key, {})
    return got


def _cache(registry: Registry) -> dict[Any, Any]:
    return derived(registry, "templates")


def op_templates(op: OpDef, registry: Registry) -> OpTemplates:
    """The op's templates, made ready once per registry snapshot."""
    cache = _cache(registry)
    got: OpTemplates | None = cache.get(op)
    if got is None:
        fwd = None
        if op.inline is not None and not op.attributes:
            fwd = _ready(op.inline, registry)
        vjps = tuple(None if t is None else _ready(t, registry) for t in op.inline_vjps or ())
        got = cache[op] = OpTemplates(fwd, vjps)
    return got


def _shared(codes: Sequence[str]) -> tuple[str, list[str]] | None:
    """The largest subexpression two or more of these expressions compute, and the
    expressions reading it as ``_q`` instead: an op's rules computed once for both."""
    trees = [ast.parse(c, mode="eval").body for c in codes]
    seen: dict[str, int] = {}
    size: dict[str, int] = {}
    for t in trees:
        for key in {ast.dump(n) for n in ast.walk(t)
                    if isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Call))}:
            seen[key] = seen.get(key, 0) + 1
        for n in ast.walk(t):
            size.setdefault(ast.dump(n), sum(1 for _ in ast.walk(n)))
    common = [k for k, c in seen.items() if c >= 2]
    if not common:
        return None
    best = max(common, key=lambda k: size[k])
    found: list[ast.AST] = []

    class Sub(ast.NodeTransformer):
        def visit(self, node: ast.AST) -> ast.AST:
            if isinstance(node, ast.expr) and ast.dump(node) == best:
                found.append(node)
                return ast.copy_location(ast.Name("_q", ast.Load()), node)
            done: ast.AST = super().visit(node)
            return done

    rewritten = [ast.unparse(Sub().visit(t)) for t in trees]
    return ast.unparse(found[0]), rewritten


def written(op: OpDef, want: Sequence[bool], registry: Registry) -> Written:
    """The op's wanted rule templates, with what two or more compute hoisted into ``_q``."""
    cache = _cache(registry)
    key = (op, tuple(want))
    got: Written | None = cache.get(key)
    if got is not None:
        return got
    tpls = op_templates(op, registry)
    rules = op.vjps or ()
    wanted = [k for k, r in enumerate(rules) if r is not None and k < len(want) and want[k]]
    each = [tpls.vjp(k) for k in range(len(rules))]
    # Filled with placeholder names so the shared part is found on plain Python.
    codes: list[str | None] = [
        None if t is None or k not in wanted else t.fmt.replace("{", "_t_").replace("}", "")
        for k, t in enumerate(each)]
    present = [c for c in codes if c is not None]
    sh = _shared(present) if len(present) > 1 else None
    shared = None
    if sh is not None:
        it = iter(sh[1])
        codes = [None if c is None else next(it) for c in codes]
        shared = _fmt(sh[0])
    fmts = tuple(None if c is None else _fmt(c) for c in codes)
    got = cache[key] = Written(
        shared, fmts, tuple(t is not None and t.pure for t in each),
        all(each[k] is not None for k in wanted),
        all(t is not None and t.pure for t in (each[k] for k in wanted)),
        _walrus(fmts, shared),
        tuple(sorted({n for k in wanted if each[k] is not None
                      for n in each[k].names})),  # type: ignore[union-attr]
        tuple(c is not None and _fresh(c) for c in fmts),
    )
    return got


def _fresh(code: str) -> bool:
    """Whether the code's last step is an arithmetic operator (a new array)."""
    tree = ast.parse(_FIELD.sub(lambda m: f"_t_{m.group(1)}", code), mode="eval").body
    return isinstance(tree, (ast.BinOp, ast.UnaryOp)) and not isinstance(tree.op, ast.UAdd)


def _walrus(codes: Sequence[str | None], shared: str | None) -> tuple[str | None, ...]:
    out = list(codes)
    for k, c in enumerate(codes):
        m = None if c is None or shared is None else _Q.search(c)
        if m is not None:
            assert c is not None and shared is not None
            out[k] = f"{c[:m.start()]}(_q := {shared}){c[m.end():]}"
            break
    return tuple(out)
