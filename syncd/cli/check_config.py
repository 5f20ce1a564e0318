"""``syncd check-config FILE``: every problem with its key path; exit 2 when there are any."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from syncd.cli import exits
from syncd.config import ConfigError, load_file


def register(sub: Any) -> None:
    p = sub.add_parser("check-config", help="validate a config file (SYNCD_* overrides applied)")
    p.add_argument("file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        load_file(args.file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        print(f"{args.file}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return exits.USAGE
    print(f"{args.file}: ok")
    return exits.OK
