"""``syncd run --config FILE [--dry-run] [--log-format json|text]``: the daemon."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from typing import Any

from syncd.cli import exits
from syncd.cli.configs import load_or_report
from syncd.cli.output import command
from syncd.engine import logs


def register(sub: Any) -> None:
    p = command(sub, "run", help="run the daemon", examples=[
        "syncd run --config /etc/syncd/syncd.yaml",
        "syncd run --config syncd.yaml --dry-run --log-format text",
    ])
    p.add_argument("--config", metavar="FILE",
                   default=os.environ.get("SYNCD_CONFIG", "/etc/syncd/syncd.yaml"),
                   help="the config file ($SYNCD_CONFIG when set)")
    p.add_argument("--dry-run", action="store_true",
                   help="plan and publish, never write Slurm (default: daemon.dry_run)")
    p.add_argument("--log-format", choices=("json", "text"), default=None,
                   help="json (one object per line) or text (default: logging.format)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_or_report(args.config)
    if settings is None:
        return exits.USAGE  # the problems are printed, one line each
    if args.dry_run:
        settings = dataclasses.replace(
            settings, daemon=dataclasses.replace(settings.daemon, dry_run=True))
    logs.setup(args.log_format or settings.logging.format, settings.logging.level)
    from syncd.engine.app import StartupError
    from syncd.engine.app import run as run_daemon

    try:
        return asyncio.run(run_daemon(settings))
    except StartupError as exc:
        for line in str(exc).splitlines():  # one line per problem, each naming the fix
            print(f"syncd: cannot start: {line}", file=sys.stderr)
        return exits.USAGE
