"""``syncd prolog-check``: for a Slurm Prolog, exit non-zero when the node lacks the Kubernetes
capacity the job needs, so Slurm requeues the job instead of letting it hang on GPUs that
Kubernetes pods hold.

Slurm treats a failing Prolog by draining the node ("Prolog error") and requeueing the job
(slurm.conf(5), Prolog); see docs/runbook.md for what on-call does then. When the daemon cannot
be reached the check passes (fail open) unless --fail-closed: a syncd outage must not stop
every job in the cluster.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from syncd.cli import exits
from syncd.cli.client import ApiError, Unreachable, base_url, call
from syncd.cli.output import command


def register(sub: Any) -> None:
    p = command(sub, "prolog-check", help="for a Slurm Prolog: fail when Kubernetes capacity "
                "is missing for this job", examples=[
                    "syncd prolog-check                  # in Prolog=, from slurmd's env",
                    "syncd prolog-check --node gpu042 --gpus 4 --fail-closed"])
    p.add_argument("--node", default=os.environ.get("SLURMD_NODENAME", ""), metavar="NODE",
                   help="the node the job starts on (default: $SLURMD_NODENAME)")
    p.add_argument("--gpus", type=int, default=None, metavar="N",
                   help="GPUs the job uses here (default: count of $SLURM_JOB_GPUS)")
    p.add_argument("--url", metavar="URL", help="daemon address: unix:/path or "
                   "http://host:port (default: $SYNCD_URL, else found through --config)")
    p.add_argument("--config", metavar="FILE",
                   help="config file, to find the daemon (default: $SYNCD_CONFIG)")
    p.add_argument("--fail-closed", action="store_true",
                   help="fail the job when the daemon cannot be asked (default: let it run)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                   help="how long to wait for the daemon, in seconds")
    p.set_defaults(func=run)


def _job_gpus() -> int:
    ids = os.environ.get("SLURM_JOB_GPUS", "") or os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return len([x for x in ids.split(",") if x.strip()])


def run(args: argparse.Namespace) -> int:
    if not args.node:
        print("syncd prolog-check: no node (--node or $SLURMD_NODENAME)", file=sys.stderr)
        return exits.USAGE
    need = args.gpus if args.gpus is not None else _job_gpus()
    try:
        data: dict[str, Any] = call(base_url(args.url, args.config),
                                    f"/api/v1/why/{args.node}", timeout=args.timeout)
    except (Unreachable, ApiError) as exc:
        print(f"syncd prolog-check: {exc}", file=sys.stderr)
        return exits.PROBLEM if args.fail_closed else exits.OK
    r = data["report"]
    if r["kubernetes"] != "Ready":
        print(f"syncd prolog-check: {args.node} is {r['kubernetes']} in Kubernetes",
              file=sys.stderr)
        return exits.PROBLEM
    usable = int(r["gpus"]["usable"])
    slurm = data.get("slurm") or {}
    # GPUs Slurm jobs use here now (this job included), without syncd's placeholder holds.
    jobs = max(need, int(slurm.get("gres_used_gpus", 0)) - int(slurm.get("hold_gpus", 0)))
    if jobs > usable:
        print(f"syncd prolog-check: {args.node} has {usable} GPUs free in Kubernetes, Slurm jobs "
              f"need {jobs}", file=sys.stderr)
        return exits.PROBLEM
    return exits.OK
