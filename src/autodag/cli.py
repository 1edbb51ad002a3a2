"""The ``autodag`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import seed_example

    seed_example(Path(args.out), sys.stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``autodag`` command."""
    parser = argparse.ArgumentParser(
        prog="autodag", description="Plugin-extensible automatic differentiation."
    )
    parser.add_argument("--version", action="version", version=f"autodag {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run the worked example", description="Run the demo.")
    demo.add_argument("--out", default="autodag-demo", help="output folder (default %(default)s)")
    demo.set_defaults(func=_demo)
    # Further commands register themselves here, one module each.
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    code: int = args.func(args)
    return code
