"""The ``autodag`` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .cli_args import parse_grad
from .cli_grad import MAX_BYTES_ENV, add_grad_command

__all__ = ["MAX_BYTES_ENV", "main"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    try:
        return run_demo(Path(args.out), sys.stdout, epochs=args.epochs, quick=args.quick,
                        train=not args.no_train, dask=args.dask)
    except OSError as exc:
        sys.stdout.flush()
        print(f"autodag demo: cannot write to {args.out!r}: {exc}", file=sys.stderr)
        return 1


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
    return _parsers()[0]


def _parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The ``autodag`` parser and its ``grad`` sub-parser."""
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
                      help="training steps (default 800, or 150 with --quick, 20 with --dask)")
    demo.add_argument("--quick", action="store_true",
                      help="200 points instead of 400, and fewer steps")
    demo.add_argument("--no-train", action="store_true", help="only the worked example")
    demo.add_argument("--dask", action="store_true",
                      help="train data-parallel on a Dask LocalCluster of 2 worker processes "
                      "(needs pip install 'autodag[dask]')")
    demo.set_defaults(func=_demo)
    grad = add_grad_command(sub)
    # Further commands register themselves here, one module each.
    __import__("autodag.plugin_cli").plugin_cli.add_commands(sub)
    return parser, grad


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser, grad = _parsers()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["grad"]:
        args = parse_grad(grad, arguments)
    else:
        args = parser.parse_args(arguments)
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
