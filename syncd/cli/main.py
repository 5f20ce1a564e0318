"""Entry point of the ``syncd`` command; each command lives in its own module.

Exit codes are in :mod:`syncd.cli.exits`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

from syncd.cli import exits

#: Modules that each define ``register(subparsers)``; a command sets ``func`` on its parser.
COMMAND_MODULES = (
    "syncd.cli.run",
    "syncd.cli.runbook",
    "syncd.cli.events",
    "syncd.cli.check_config",
    "syncd.cli.prolog",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd", description="Keep Slurm in step with Kubernetes nodes and GPUs."
    )
    from syncd import __version__

    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Handler | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return exits.USAGE
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
