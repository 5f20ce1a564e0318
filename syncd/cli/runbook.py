"""On-call commands: status, plan, why, drain, resume, breaker. Each takes ``--output json``.

Exit codes (syncd.cli.exits): 0 all good / done; 1 something needs attention (drift, pending
changes, a refused request); 2 usage; 3 the daemon (or Slurm behind it) is unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from syncd.cli import exits
from syncd.cli.client import ApiError, Target, Unreachable, base_url, call


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="daemon address: unix:/path or http://host:port (default: "
                   "$SYNCD_URL, else the operator socket daemon.operator_socket when it "
                   "exists, else daemon.listen)")
    p.add_argument("--config", help="config file, to find the socket and daemon.listen "
                   "(default: $SYNCD_CONFIG)")
    p.add_argument("--token-file", help="bearer token for changes over TCP "
                   "(default: $SYNCD_TOKEN_FILE)")
    p.add_argument("--output", "-o", choices=("table", "json"), default="table")


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="per-node Kubernetes vs Slurm state, and a summary")
    _common(p)
    p.add_argument("--watch", "-w", action="store_true", help="refresh every --interval s")
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--drifted", action="store_true", help="only nodes with drift or causes")
    p.set_defaults(func=status)

    p = sub.add_parser("plan", help="what syncd would do now, and why")
    _common(p)
    p.set_defaults(func=plan)

    p = sub.add_parser("why", help="causes, timers and recent history of one node")
    _common(p)
    p.add_argument("node")
    p.set_defaults(func=why)

    p = sub.add_parser("drain", help="drain a node as a syncd-owned (manual) drain")
    _common(p)
    p.add_argument("node")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=drain)

    p = sub.add_parser("resume", help="resume a node syncd drained")
    _common(p)
    p.add_argument("node")
    p.add_argument("--force", action="store_true", help="resume a drain that is not syncd's")
    p.set_defaults(func=resume)

    p = sub.add_parser("breaker", help="show or reset the blast-radius breaker")
    _common(p)
    p.add_argument("op", choices=("status", "reset"))
    p.set_defaults(func=breaker)


def _guard(fn: Callable[[argparse.Namespace, Target], int]) -> Callable[[argparse.Namespace], int]:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            base = base_url(args.url, args.config, args.token_file)
            return fn(args, base)
        except Unreachable as exc:
            print(f"syncd: {exc}", file=sys.stderr)
            return exits.UNREACHABLE
        except ApiError as exc:
            print(f"syncd: {exc}", file=sys.stderr)
            return exits.UNREACHABLE if exc.status == 503 else exits.PROBLEM
    return wrapped


def _dump(data: object) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _status_text(data: dict[str, Any], drifted_only: bool) -> str:
    rows = [["NODE", "KUBERNETES", "GPU A/H/U", "SLURM", "OWNER", "FEATURES", "DRIFT",
             "CAUSES / TIMERS", "REASON"]]
    for n in data["nodes"]:
        if drifted_only and not (n["drift"] or n["causes"] or n["timers"]):
            continue
        g = n["gpus"]
        rows.append([
            n["name"], n["kubernetes"], f"{g['allocatable']}/{g['held']}/{g['usable']}",
            n["slurm"], n["owner"] or "-", ",".join(n["syncd_features"]) or "-",
            "yes" if n["drift"] else "-", "; ".join([*n["causes"], *n["timers"]]) or "-",
            (n["reason"] or "-")[:60],
        ])
    s = data["summary"]
    line = (f"{s['nodes']} nodes, {s['drifted']} drifted, {s['drained_by_syncd']} drained by "
            f"syncd, {s['drained_by_others']} held by others, {s['gpus_usable']} GPUs usable; "
            f"kubernetes {'synced' if s['kubernetes_synced'] else 'STALE'}; breaker "
            f"{s['breaker']}; {s['role']}{' (dry-run)' if s['dry_run'] else ''}")
    return _table(rows) + "\n" + line


@_guard
def status(args: argparse.Namespace, base: Target) -> int:
    while True:
        data = call(base, "/api/v1/status")
        if args.output == "json":
            _dump(data)
        else:
            if args.watch:
                print("\x1b[2J\x1b[H", end="")
            print(_status_text(data, args.drifted))
        if not args.watch:
            s = data["summary"]
            return exits.PROBLEM if s["drifted"] or s["breaker"] == "open" else exits.OK
        time.sleep(args.interval)


@_guard
def plan(args: argparse.Namespace, base: Target) -> int:
    data = call(base, "/api/v1/plan")
    if args.output == "json":
        _dump(data)
    else:
        if not data["changes"] and not data["withheld"]:
            print("nothing to do: Slurm agrees with Kubernetes")
        for c in data["changes"]:
            extra = c["reason"] or ",".join(c["features"]) or (
                f"hold {c['hold_gpus']}" if c["action"] == "set_hold" else "")
            print(f"{c['action']:12} {c['node']:16} {extra}  # {c['why']}")
        for c in data["withheld"]:
            print(f"WITHHELD {c['action']} {c['node']}  # {c['why']}")
        for a in data["slurm_calls"]:
            print(f"  slurm call: {a['action']} {a['hostlist']} ({a['nodes']} nodes)")
        if data["breaker"]["open"]:
            print(f"breaker OPEN: {data['breaker']['why']}")
    return exits.PROBLEM if data["changes"] or data["withheld"] else exits.OK


@_guard
def why(args: argparse.Namespace, base: Target) -> int:
    data = call(base, f"/api/v1/why/{args.node}")
    if args.output == "json":
        _dump(data)
        return exits.OK
    r = data["report"]
    g = r["gpus"]
    print(f"{r['name']}: Kubernetes {r['kubernetes']}; Slurm {r['slurm']}")
    print(f"  GPUs: allocatable {g['allocatable']}, held by pods {g['held']}, "
          f"usable {g['usable']}; syncd features: {', '.join(r['syncd_features']) or '-'}")
    if r["reason"]:
        print(f"  reason: {r['reason']!r} (owner: {r['owner'] or '-'})")
    print(f"  causes: {'; '.join(r['causes']) or 'none'}")
    for t in r["timers"]:
        print(f"  timer: {t}")
    m = data["memory"]
    if m.get("ledger_reason"):
        print(f"  ledger: syncd wrote {m['ledger_reason']!r}"
              + (" (manual drain)" if m.get("manual") else ""))
    if data["history"]:
        print("  recent:")
        for h in data["history"]:
            print(f"    {time.strftime('%H:%M:%S', time.localtime(h['time']))} {h['text']}")
    return exits.OK


@_guard
def drain(args: argparse.Namespace, base: Target) -> int:
    data = call(base, "/api/v1/drain", {"node": args.node, "reason": args.reason})
    if args.output == "json":
        _dump(data)
    else:
        print(f"{args.node} drained: {data['reason']}")
    return exits.OK


@_guard
def resume(args: argparse.Namespace, base: Target) -> int:
    data = call(base, "/api/v1/resume", {"node": args.node, "force": args.force})
    if args.output == "json":
        _dump(data)
    else:
        print(f"{args.node} resumed" + (f" ({data['warning']})" if data.get("warning") else ""))
    return exits.OK


@_guard
def breaker(args: argparse.Namespace, base: Target) -> int:
    if args.op == "reset":
        data = call(base, "/api/v1/breaker/reset", {})
    else:
        data = call(base, "/api/v1/breaker")
    if args.output == "json":
        _dump(data)
    elif args.op == "reset":
        print("breaker reset: drains allowed again (still bounded by the limits)")
    else:
        print(f"breaker {'OPEN' if data['open'] else 'closed'}"
              + (f": {data['why']}" if data["why"] else ""))
        print(f"  drains in window: {len(data['recent_drains'])}; limits: {data['limits']}")
    return exits.PROBLEM if args.op == "status" and data.get("open") else exits.OK
