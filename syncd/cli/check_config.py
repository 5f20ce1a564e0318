"""``syncd check-config FILE``: every problem with its key path (or the ``SYNCD_*`` variable that
caused it), and paths that do not exist; exit 2 when there are any."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from syncd.cli import exits
from syncd.cli.configs import load_or_report
from syncd.cli.output import command


def register(sub: Any) -> None:
    p = command(sub, "check-config", help="validate a config file (SYNCD_* overrides applied)",
                examples=["syncd check-config /etc/syncd/syncd.yaml",
                          "SYNCD_POLICY__DRAIN_AFTER=10s syncd check-config syncd.yaml"])
    p.add_argument("file", nargs="?", default=os.environ.get("SYNCD_CONFIG"),
                   help="the config file (default: $SYNCD_CONFIG)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.file:
        print("syncd check-config: name a config file (or set $SYNCD_CONFIG)", file=sys.stderr)
        return exits.USAGE
    if load_or_report(args.file) is None:
        return exits.USAGE
    print(f"{args.file}: ok")
    return exits.OK
