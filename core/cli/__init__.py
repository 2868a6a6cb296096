"""Command-line interface (``python -m core --help``): the parser and the dispatch.

Each command group lives in a module of its own that registers its subcommands and
handlers: ``runs`` (datasets, train, compare, evaluate, runs, fetch-weights), ``jobs``
(worker, submit, jobs, cancel), ``predict`` (predict, register-model, evaluate-reference),
``evolve`` and ``bench``; ``common`` holds what they share.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core.cli import bench, common, evolve, export, jobs, predict, runs

GROUPS = (runs, predict, export, jobs, bench, evolve)  # the order of the commands in --help


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m core`` parser: a global ``--verbose`` and every group's subcommands."""
    parser = argparse.ArgumentParser(prog="python -m core", description="Facial emotion recognition comparison lab")
    parser.add_argument("--verbose", action="store_true", help=common.VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, **kwargs) -> argparse.ArgumentParser:
        p = sub.add_parser(name, **kwargs)
        # Accepted after the command too; SUPPRESS keeps a flag given before it from being reset.
        p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=common.VERBOSE_HELP)
        return p

    for group in GROUPS:
        group.register(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (2 for bad input, reported as one ``error:`` line)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Decided before the parser is built: building it imports the registries, and TensorFlow's
    # logging is fixed when it is first imported.
    with common.tensorflow_output(verbose="--verbose" in argv):
        args = build_parser().parse_args(argv)
        try:
            return args.fn(args)
        except common.user_errors() as exc:
            print(f"error: {common.error_text(exc)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted; rerun the same command to start again, finished runs are kept", file=sys.stderr)
            return 130
