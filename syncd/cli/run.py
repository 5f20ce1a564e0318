"""``syncd run --config FILE [--dry-run] [--log-format json|text]``: the daemon."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from typing import Any

from syncd.cli import exits
from syncd.config import ConfigError, load_file
from syncd.engine import logs


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run the daemon")
    p.add_argument("--config", default=os.environ.get("SYNCD_CONFIG", "/etc/syncd/syncd.yaml"))
    p.add_argument("--dry-run", action="store_true", help="plan and publish, never write Slurm")
    p.add_argument("--log-format", choices=("json", "text"), default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_file(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{args.config}: {problem}", file=sys.stderr)
        return exits.USAGE
    if args.dry_run:
        settings = dataclasses.replace(
            settings, daemon=dataclasses.replace(settings.daemon, dry_run=True))
    logs.setup(args.log_format or settings.logging.format, settings.logging.level)
    from syncd.engine.app import StartupError
    from syncd.engine.app import run as run_daemon

    try:
        return asyncio.run(run_daemon(settings))
    except StartupError as exc:
        print(f"syncd: cannot start: {exc}", file=sys.stderr)
        return exits.USAGE
