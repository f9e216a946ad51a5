"""The ``odenet`` command line: one module per subcommand, each a thin layer over the library
(argument parsing, validation messages naming the flags, printing; the work is in analysis).

Every subcommand module exposes ``add_parser(sub)``, which declares the command and its options
and sets ``func`` to its ``run(args) -> int`` (the exit status).  The modules import only argparse
at load time and the library inside ``run``, so ``odenet --help`` and every command's parsing stay
fast.  This package sits on top of the floors: it imports analysis, and nothing below imports it
(``import odenet`` does not load ``odenet.cli``).

Exit statuses shared by every command: 0 success, 2 bad options (a ValueError, printed as
``odenet COMMAND: error: ...``), :data:`EXIT_BROKEN_PIPE` when stdout is closed early; the
commands document their others.
"""
from __future__ import annotations

import argparse
import os
import sys

from odenet.cli import converge, demo, inspect, reproduce, sweep, trace, tunnel

#: the subcommand modules in the order ``odenet --help`` lists them
COMMANDS = (demo, reproduce, inspect, trace, sweep, converge, tunnel)

#: exit status when stdout is closed early (``odenet inspect f.h5 | head -1``): 128 + SIGPIPE, as
#: a shell reports a program killed by SIGPIPE
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    """The ``odenet`` parser with every subcommand of :data:`COMMANDS` (``args.func`` runs it)."""
    from odenet import __version__

    parser = argparse.ArgumentParser(prog="odenet", description="odenet: the continuum limit of residual networks "
                                     "(ResNets as Euler steps of neural ODEs). Run 'odenet COMMAND --help' for a "
                                     "command's options.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print odenet's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns the exit status.  A
    ValueError of a command is printed as ``odenet COMMAND: error: ...`` with status 2; output to a
    closed pipe ends quietly with status :data:`EXIT_BROKEN_PIPE` (141), for every command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if argv[:1] == ["reproduce"]:
        # argparse.REMAINDER does not collect arguments that start with '-' (``reproduce --quick``
        # fails with "unrecognized arguments"): hand everything after the command over untouched
        args = argparse.Namespace(command="reproduce", rest=argv[1:], func=reproduce.run)
    else:
        args = parser.parse_args(argv)
    try:
        try:
            status = args.func(args)
        except ValueError as exc:
            print(f"odenet {args.command}: error: {exc}", file=sys.stderr)
            status = 2
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush of what is still buffered
    does not fail again (the recipe of Python's documentation of SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (captured)
        pass


__all__ = ["main", "build_parser", "COMMANDS", "EXIT_BROKEN_PIPE"]
