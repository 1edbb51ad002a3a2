"""The ``autodag grad`` command: its options, and the value and derivatives of an
expression, with every check made before anything is computed.

Its pieces live beside it: ``cli_args`` finds EXPR among the arguments, ``cli_files``
checks and writes the output files, ``cli_print`` prints the result.
"""

from __future__ import annotations

import argparse
import keyword
import os
import re
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from .budget import DEFAULT_MAX_BYTES, BudgetError, format_size, parse_size, suggest_size
from .cli_files import OutputError, check_outputs, write_outputs
from .cli_print import print_result
from .errors import AutodagError
from .expr import MAX_DEPTH, MAX_LENGTH, MAX_VALUE_DIMS

__all__ = ["MAX_BYTES_ENV", "add_grad_command"]

EXIT_USAGE: Final = 2
EXIT_FAILURE: Final = 1
#: The environment variable giving ``grad --max-bytes`` its default.
MAX_BYTES_ENV: Final = "AUTODAG_MAX_BYTES"
_DEFAULT_SIZE: Final = suggest_size(DEFAULT_MAX_BYTES)
# Where the command's own nodes were created says nothing to its user.
_CREATED_AT: Final = re.compile(r", created at [^)]*")

_GRAD_HELP: Final = f"""\
Print the value of EXPR and its partial derivatives for the given values.

EXPR may use (nothing else is allowed, and nothing in it is run by Python):
  numbers and names     2.5, 1e-3, x, w1
  operators             + - * / ** @ and unary minus; EXPR may start with '-' (-x*y)
  calls of ops          any registered op by name (autodag plugins lists them), inputs
                        being expressions and attributes constants, by position or by
                        keyword: exp(x), sum(x, axis=0), sum(x, 0, keepdims=True)
  lists of inputs       for ops taking a sequence: concatenate([x, y], axis=0)
  subscripts            constant indices, slices, None and ..., when a plugin provides
                        the getitem op (autodag-array): x[0], x[-1], x[1:3], x[::2],
                        x[0, 1:], x[..., 0], x[None]

Each name needs a value NAME=VALUE: a number (nan, inf and -inf in any case too) or a
JSON array of numbers (x=[1,2,3], m=[[1,2],[3,4]]). For a non-scalar value the
derivatives are those of its sum. Derivatives are listed in the order the values are
given.

Limits: EXPR is at most {MAX_LENGTH} characters, with brackets (parentheses, calls,
subscripts, lists) nested at most {MAX_DEPTH} deep; a chain such as x + y + z is not
nesting. Arrays in values nest at most {MAX_VALUE_DIMS} deep. Before anything runs, the
memory of every value and gradient is estimated from the shapes; more than --max-bytes
(default {_DEFAULT_SIZE}, or ${MAX_BYTES_ENV}) is refused, naming the node and its shapes.

--json prints one object:
  {{"version": 1, "expression": str, "value": V, "shape": [int], "dtype": str,
   "differentiated": "value" | "sum(value)", "wrt": [str],
   "gradients": {{name: V}}}}
where V is a number or nested lists of numbers (of the variable's shape, for a
gradient), and the non-finite numbers JSON lacks are the strings "nan", "inf", "-inf".

Exit codes: 0 success; 2 malformed expression or values, or over the memory limit;
1 a file could not be written or rendered (output paths are checked before anything
is computed, and nothing is printed then).

examples:
  autodag grad "(x*y + c)*c + x" x=0.9 y=0.4 c=1.3
  autodag grad "exp(x) * sum(y)" x=0.5 y=[1,2,3] --wrt y --json
  autodag grad -x*x x=3
  autodag grad "x @ w" x=[[1,2]] w=[[3],[4]] --render graph.svg
"""


class _UsageError(Exception):
    """Malformed command-line input: reported on one line, exit code 2."""


def _assignments(items: Sequence[str]) -> dict[str, Any]:
    from .values import parse_value

    values: dict[str, Any] = {}
    for item in items:
        name, eq, text = item.partition("=")
        # Python reads names in the expression in NFKC form ("\ufb01" is "fi"); so must we.
        name = unicodedata.normalize("NFKC", name.strip())
        if not eq or not text.strip():
            raise _UsageError(f"expected NAME=VALUE, got {item!r}")
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
            raise _UsageError(f"{name!r} in {item!r} is not a valid variable name")
        if name in values:
            raise _UsageError(f"{name!r} is given a value twice")
        values[name] = parse_value(text, name)
    return values


def _one_line(exc: BaseException) -> str:
    """The message on one line, without the source locations of nodes the command made."""
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return _CREATED_AT.sub("", msg)


def _max_bytes(args: argparse.Namespace) -> int:
    """The memory limit: --max-bytes, else the environment variable, else the default."""
    if args.max_bytes is not None:
        limit: int = args.max_bytes
        return limit
    env = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not env:
        return DEFAULT_MAX_BYTES
    try:
        return parse_size(env)
    except ValueError as exc:
        raise _UsageError(f"{MAX_BYTES_ENV}={env!r}: {exc}") from None


def _wrt(names: Sequence[str], values: dict[str, Any], wrt_option: str | None) -> list[str]:
    """The names to differentiate for, once every name has a value and every value a use."""
    missing = [n for n in names if n not in values]
    if missing:
        raise _UsageError(
            f"no value given for {', '.join(map(repr, missing))}; pass "
            + " ".join(f"{n}=VALUE" for n in missing)
        )
    unused = [n for n in values if n not in names]
    if unused:
        raise _UsageError(
            f"value given for {', '.join(map(repr, unused))}, which the expression does not use"
        )
    wrt = list(values) if wrt_option is None else [w.strip() for w in wrt_option.split(",")]
    for w in wrt:
        if w not in values:
            raise _UsageError(
                f"--wrt names {w!r}, which has no value; names with values: "
                f"{', '.join(values) or 'none'}"
            )
    return wrt


def _grad_compute(args: argparse.Namespace) -> dict[str, Any]:
    """Parse, check, estimate, build and differentiate; the result for printing.

    Raises _UsageError or an AutodagError for input errors, OutputError for an output
    file that cannot be written, BudgetError for work over the memory limit; all before
    any value is computed.
    """
    from .budget import estimate
    from .execute import backward_pass, forward_pass, topological_sort
    from .expr import build, parse
    from .graph import Graph
    from .nodes import Variable

    limit = _max_bytes(args)
    expr = parse(args.expr)
    values = _assignments(args.values)
    wrt = _wrt(expr.names, values, args.wrt)
    check_outputs(args.dot, args.render)
    graph = Graph()
    with graph:
        variables = {n: Variable(v, name=n) for n, v in values.items()}
    out = build(expr, variables, graph=graph)
    order = topological_sort(out)
    estimate(order, limit)
    # Overflow and division by zero are part of the answer (inf, nan), not warnings.
    with np.errstate(all="ignore"):
        value = forward_pass(order)
        backward_pass(order)
    grads = {}
    for w in wrt:
        g = variables[w].gradient
        # No gradient reaches a variable the value does not depend on: its derivative is 0.
        grads[w] = np.zeros_like(values[w]) if g is None else g
    return {"expr": expr, "out": out, "value": value, "grads": grads}


def _grad(args: argparse.Namespace) -> int:
    def fail(message: str, code: int) -> int:
        print(f"autodag grad: error: {message}", file=sys.stderr)
        return code

    try:
        res = _grad_compute(args)
    except OutputError as exc:
        return fail(str(exc), EXIT_FAILURE)
    except BudgetError as exc:
        return fail(
            f"{_one_line(exc)}; raise the limit with --max-bytes "
            f"{suggest_size(exc.needed)} (at least) or {MAX_BYTES_ENV}", EXIT_USAGE)
    except MemoryError as exc:
        return fail(
            f"out of memory ({_one_line(exc)}), although the estimate was within "
            f"{format_size(_max_bytes(args))}: lower --max-bytes or use smaller values",
            EXIT_USAGE)
    except (_UsageError, AutodagError, TypeError, ValueError, ArithmeticError,
            RecursionError) as exc:
        return fail(_one_line(exc), EXIT_USAGE)
    except Exception as exc:  # a plugin's rule failing in a way nobody planned for
        return fail(f"{type(exc).__name__}: {_one_line(exc)}", EXIT_FAILURE)
    try:
        # Files before the values: a failure leaves nothing printed that looks like success.
        write_outputs(res["out"], args.expr.strip(), args.dot, args.render)
    except (OSError, RuntimeError, AutodagError) as exc:  # Graphviz failing, a full disk
        return fail(_one_line(exc), EXIT_FAILURE)
    print_result(args.expr.strip(), res["value"], res["grads"], as_json=args.json)
    return 0


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_grad_command(sub: Any) -> argparse.ArgumentParser:
    """Add the ``grad`` command to the ``autodag`` sub-parsers ``sub``; its parser."""
    grad: argparse.ArgumentParser = sub.add_parser(
        "grad",
        help="value and derivatives of an expression",
        description=_GRAD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # cli_args lists these long options too, to find EXPR among the arguments.
    grad.add_argument("expr", metavar="EXPR", help="the expression, quoted")
    # A default, so that argparse does not list NAME=VALUE as required when EXPR is missing.
    grad.add_argument("values", metavar="NAME=VALUE", nargs="*", default=[],
                      help="a value for each name: a number or a JSON array")
    grad.add_argument("--wrt", metavar="NAMES",
                      help="comma-separated names to differentiate for (default: all)")
    grad.add_argument("--json", action="store_true", help="print one JSON object (see above)")
    grad.add_argument("--dot", metavar="FILE", help="write the graph as DOT text")
    grad.add_argument("--render", metavar="FILE",
                      help="write the graph picture (.svg, .png or .pdf; needs Graphviz)")
    grad.add_argument("--max-bytes", metavar="SIZE", type=_size, default=None,
                      help="refuse an expression whose values and gradients are estimated "
                      "to need more memory than SIZE bytes (2G, 500M, 64K: powers of "
                      f"1024; default ${MAX_BYTES_ENV}, else {_DEFAULT_SIZE})")
    grad.set_defaults(func=_grad)
    return grad
