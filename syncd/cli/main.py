"""Entry point of the ``syncd`` command; each command lives in its own module.

Exit codes are in :mod:`syncd.cli.exits`. Output into a closed pipe (``syncd status | head -1``)
ends the command quietly with 141, as a tool killed by SIGPIPE would; the handler is Python's
documented one (https://docs.python.org/3/library/signal.html#note-on-sigpipe) rather than
SIGPIPE's default action, which would also kill the daemon when a client hangs up.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

from syncd.cli import exits
from syncd.cli.output import Help

#: Modules that each define ``register(subparsers)``; a command sets ``func`` on its parser.
COMMAND_MODULES = (
    "syncd.cli.run",
    "syncd.cli.runbook",
    "syncd.cli.events",
    "syncd.cli.check_config",
    "syncd.cli.prolog",
    "syncd.cli.completion",
)

Handler = Callable[[argparse.Namespace], int]

EXAMPLES = """\
examples:
  syncd status --drifted                 what differs between Kubernetes and Slurm now
  syncd why 'gpu[001-004]'               causes, timers and history of these nodes
  syncd drain gpu042 --reason "PSU swap" a drain syncd owns and will not undo
  syncd events tail --node gpu042        the event stream, live
  syncd <command> --help                 every option of a command, with its default

The daemon is found through --url, $SYNCD_URL, or the config in --config / $SYNCD_CONFIG.
Exit codes: 0 ok, 1 needs attention, 2 usage or config, 3 daemon or Slurm unreachable."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd", description="Keep Slurm in step with Kubernetes nodes and GPUs.",
        formatter_class=Help, epilog=EXAMPLES)
    from syncd import __version__

    parser.add_argument("--version", action="version", version=f"syncd {__version__}",
                        help="print the version and exit")
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
        code = func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Whatever is still buffered would fail again at exit: send it nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return exits.BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
