"""The ``autodag`` command."""

from __future__ import annotations

import argparse
import json
import keyword
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from . import __version__
from .errors import AutodagError

__all__ = ["main"]


EXIT_USAGE: Final = 2
EXIT_FAILURE: Final = 1
# Where the command's own nodes were created says nothing to its user.
_CREATED_AT: Final = re.compile(r", created at [^)]*")

_GRAD_HELP: Final = """\
Print the value of EXPR and its partial derivatives for the given values.

EXPR uses numbers, names, + - * / ** @, unary minus and calls of registered ops by
name (exp(x) * sum(y)); nothing else is allowed and nothing is executed by Python.
Each name needs a value NAME=VALUE: a number or a JSON array (x=[1,2,3]). For a
non-scalar value the derivatives are those of its sum. Derivatives are listed in
the order the values are given.

--json prints one object:
  {"version": 1, "expression": str, "value": V, "shape": [int], "dtype": str,
   "differentiated": "value" | "sum(value)", "wrt": [str],
   "gradients": {name: V}}
where V is a number or nested lists of numbers (of the variable's shape, for a
gradient), and the non-finite numbers JSON lacks are the strings "nan", "inf", "-inf".

Exit codes: 0 success, 2 malformed expression or values, 1 a file could not be
written or rendered.

examples:
  autodag grad "(x*y + c)*c + x" x=0.9 y=0.4 c=1.3
  autodag grad "exp(x) * sum(y)" x=0.5 y=[1,2,3] --wrt y --json
  autodag grad "x @ w" x=[[1,2]] w=[[3],[4]] --render graph.svg
"""


class _UsageError(Exception):
    """Malformed command-line input: reported on one line, exit code 2."""


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    try:
        return run_demo(Path(args.out), sys.stdout, epochs=args.epochs, quick=args.quick,
                        train=not args.no_train)
    except OSError as exc:
        sys.stdout.flush()
        print(f"autodag demo: cannot write to {args.out!r}: {exc}", file=sys.stderr)
        return 1


def _assignments(items: Sequence[str]) -> dict[str, Any]:
    from .expr import parse_value

    values: dict[str, Any] = {}
    for item in items:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not text.strip():
            raise _UsageError(f"expected NAME=VALUE, got {item!r}")
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
            raise _UsageError(f"{name!r} in {item!r} is not a valid variable name")
        if name in values:
            raise _UsageError(f"{name!r} is given a value twice")
        values[name] = parse_value(text, name)
    return values


def _jsonable(value: Any) -> Any:
    """Floats and nested lists of floats, with non-finite numbers as strings."""
    def fix(x: Any) -> Any:
        if isinstance(x, list):
            return [fix(v) for v in x]
        f = float(x)
        if math.isfinite(f):
            return f
        return "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")

    return fix(np.asarray(value, dtype=np.float64).tolist())


def _one_line(exc: BaseException) -> str:
    """The message on one line, without the source locations of nodes the command made."""
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return _CREATED_AT.sub("", msg)


def _number(x: Any) -> str:
    return f"{float(x):.10g}"


def _text(value: Any) -> str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return _number(arr)
    return np.array2string(arr, separator=", ", max_line_width=100,
                           formatter={"all": _number})


def _grad_compute(args: argparse.Namespace) -> dict[str, Any]:
    """Parse, build and differentiate; the result for printing, or _UsageError."""
    from .execute import backward_pass, forward_pass, topological_sort
    from .expr import build, parse
    from .graph import Graph
    from .nodes import Variable

    expr = parse(args.expr)
    values = _assignments(args.values)
    missing = [n for n in expr.names if n not in values]
    if missing:
        raise _UsageError(
            f"no value given for {', '.join(map(repr, missing))}; pass "
            + " ".join(f"{n}=VALUE" for n in missing)
        )
    unused = [n for n in values if n not in expr.names]
    if unused:
        raise _UsageError(
            f"value given for {', '.join(map(repr, unused))}, which the expression does not use"
        )
    wrt = list(values) if args.wrt is None else [w.strip() for w in args.wrt.split(",")]
    for w in wrt:
        if w not in values:
            raise _UsageError(
                f"--wrt names {w!r}, which has no value; names with values: "
                f"{', '.join(values) or 'none'}"
            )
    for path in (args.render,):
        if path is not None:
            from .viz import FORMATS

            if Path(path).suffix.lower() not in FORMATS:
                raise _UsageError(
                    f"--render {path!r}: the extension must be one of {', '.join(FORMATS)}"
                )
    graph = Graph()
    with graph:
        variables = {n: Variable(v, name=n) for n, v in values.items()}
    out = build(expr, variables, graph=graph)
    order = topological_sort(out)
    # Overflow and division by zero are part of the answer (inf, nan), not warnings.
    with np.errstate(all="ignore"):
        value = forward_pass(order)
        backward_pass(order)
    return {
        "expr": expr,
        "out": out,
        "value": value,
        "grads": {w: variables[w].gradient for w in wrt},
    }


def _grad(args: argparse.Namespace) -> int:
    try:
        res = _grad_compute(args)
    except (_UsageError, AutodagError, TypeError, ValueError, ArithmeticError,
            RecursionError) as exc:
        print(f"autodag grad: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a plugin's rule failing in a way nobody planned for
        print(f"autodag grad: error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    value, grads, out = res["value"], res["grads"], res["out"]
    scalar = np.ndim(value) == 0
    if args.json:
        doc = {
            "version": 1,
            "expression": args.expr.strip(),
            "value": _jsonable(value),
            "shape": list(np.shape(value)),
            "dtype": np.result_type(value).name,
            "differentiated": "value" if scalar else "sum(value)",
            "wrt": list(grads),
            "gradients": {n: _jsonable(g) for n, g in grads.items()},
        }
        print(json.dumps(doc))
    else:
        shape = "" if scalar else f" (shape {np.shape(value)}; derivatives are of its sum)"
        print(f"value{shape} = {_text(value)}")
        for n, g in grads.items():
            print(f"d/d{n} = {_text(g)}")
    try:
        from .viz import render, to_dot

        if args.dot is not None:
            Path(args.dot).write_text(to_dot(out, title=args.expr.strip(), highlight=True),
                                      encoding="utf-8")
        if args.render is not None:
            render(out, args.render, title=args.expr.strip(), highlight=True)
    except (OSError, RuntimeError) as exc:
        print(f"autodag grad: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``autodag`` command."""
    parser = argparse.ArgumentParser(
        prog="autodag", description="Plugin-extensible automatic differentiation."
    )
    parser.add_argument("--version", action="version", version=f"autodag {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="run the worked example and train a small network",
        description="Print the tutorial's worked example, then train a small MLP "
        "classifier on a synthetic two-spirals data set, and write the graph pictures "
        "and a loss curve (PNG) to the output folder.",
    )
    demo.add_argument("--out", default="autodag-demo", help="output folder (default %(default)s)")
    demo.add_argument("--epochs", type=_positive_int, default=None,
                      help="training steps (default 800, or 150 with --quick)")
    demo.add_argument("--quick", action="store_true",
                      help="200 points instead of 400, and fewer steps")
    demo.add_argument("--no-train", action="store_true", help="only the worked example")
    demo.set_defaults(func=_demo)
    grad = sub.add_parser(
        "grad",
        help="value and derivatives of an expression",
        description=_GRAD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    grad.add_argument("expr", metavar="EXPR", help="the expression, quoted")
    grad.add_argument("values", metavar="NAME=VALUE", nargs="*",
                      help="a value for each name: a number or a JSON array")
    grad.add_argument("--wrt", metavar="NAMES",
                      help="comma-separated names to differentiate for (default: all)")
    grad.add_argument("--json", action="store_true", help="print one JSON object (see above)")
    grad.add_argument("--dot", metavar="FILE", help="write the graph as DOT text")
    grad.add_argument("--render", metavar="FILE",
                      help="write the graph picture (.svg, .png or .pdf; needs Graphviz)")
    grad.set_defaults(func=_grad)
    # Further commands register themselves here, one module each.
    __import__("autodag.plugin_cli").plugin_cli.add_commands(sub)
    return parser


def _protect_expression(argv: Sequence[str]) -> list[str]:
    """Keep ``grad -x*y`` from being read as an option: grad's only short option is -h."""
    out = list(argv)
    if len(out) > 1 and out[0] == "grad":
        first = out[1]
        if first.startswith("-") and not first.startswith("--") and first != "-h":
            out[1] = " " + first  # argparse takes text not starting with '-' as positional
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(_protect_expression(sys.argv[1:] if argv is None else argv))
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # ``autodag plugins --json | head``: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return code
