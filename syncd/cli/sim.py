"""``syncd sim``: run the Kubernetes API simulator (test and demo infrastructure)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    from syncd.sim.runner import add_arguments

    p = sub.add_parser("sim", help="run the Kubernetes API simulator (tests, demo, benchmark)")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from syncd.sim.runner import run as run_sim

    return run_sim(args)
