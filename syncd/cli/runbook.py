"""On-call commands: status, plan, why, drain, resume, breaker; each takes ``-o FORMAT``.

Exit codes (syncd.cli.exits): 0 all good / done; 1 something needs attention (drift, pending
changes, a refused request); 2 usage; 3 the daemon, or Slurm behind it, is unreachable (the
message says which).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from syncd.cli import exits
from syncd.cli.client import ApiError, SlurmUnreachable, Target, Unreachable, base_url, call
from syncd.cli.output import add_nodes, add_output, command, dump, expand, table

GPU_LEGEND = ("GPU A/H/U: allocatable in Kubernetes / held by Kubernetes pods that are not\n"
              "Slurm's / usable by Slurm jobs (A - H)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", metavar="URL", help="daemon address: unix:/path or http://host:port "
                   "(default: $SYNCD_URL, else the operator socket daemon.operator_socket when "
                   "it exists, else daemon.listen)")
    p.add_argument("--config", metavar="FILE", help="config file, to find the socket and "
                   "daemon.listen (default: $SYNCD_CONFIG, else the built-in defaults)")
    p.add_argument("--token-file", metavar="FILE", help="bearer token for changes over TCP "
                   "(default: $SYNCD_TOKEN_FILE; none needed on the operator socket)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for the daemon's answer, in seconds")
    add_output(p)


def register(sub: Any) -> None:
    p = command(sub, "status", help="per-node Kubernetes vs Slurm state, and a summary",
                description=f"Per-node Kubernetes vs Slurm state, and a summary.\n{GPU_LEGEND}.",
                examples=["syncd status --drifted", "syncd status -w --interval 5",
                          "syncd status -o yaml", "syncd status -o wide | grep gpu01"])
    _common(p)
    p.add_argument("--watch", "-w", action="store_true",
                   help="refresh every --interval seconds under a header (time, daemon, "
                        "leader, summary) until Ctrl-C")
    p.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                   help="seconds between refreshes with --watch")
    p.add_argument("--drifted", action="store_true",
                   help="only nodes with drift, causes or timers (default: every node)")
    p.set_defaults(func=status)

    p = command(sub, "plan", help="what syncd would do now, and why",
                examples=["syncd plan", "syncd plan -o json | jq '.changes[].node'"])
    _common(p)
    p.set_defaults(func=plan)

    p = command(sub, "why", help="causes, timers and recent history of nodes",
                examples=["syncd why gpu042", "syncd why 'gpu[001-004]'", "syncd why gpu1 gpu2"])
    _common(p)
    add_nodes(p, "the nodes to explain")
    p.set_defaults(func=why)

    p = command(sub, "drain", help="drain nodes as a syncd-owned (manual) drain",
                examples=['syncd drain gpu042 --reason "PSU swap, INC-1234"',
                          "syncd drain 'gpu[003-004]' --reason 'rack 7 maintenance'"])
    _common(p)
    add_nodes(p, "the nodes to drain")
    p.add_argument("--reason", required=True,
                   help="why, in Slurm's reason field (syncd prefixes it with 'syncd: manual,')")
    p.set_defaults(func=drain)

    p = command(sub, "resume", help="resume nodes syncd drained",
                examples=["syncd resume gpu042", "syncd resume 'gpu[003-004]'",
                          "syncd resume gpu042 --force"])
    _common(p)
    add_nodes(p, "the nodes to resume")
    p.add_argument("--force", action="store_true",
                   help="also resume a drain that is not syncd's, and say whose it was "
                        "(default: refuse)")
    p.set_defaults(func=resume)

    p = command(sub, "breaker", help="show or reset the blast-radius breaker",
                examples=["syncd breaker status", "syncd breaker reset"])
    _common(p)
    p.add_argument("op", choices=("status", "reset"), help="status: show it; reset: close it "
                   "and clear the window's count (drains flow again up to the limits)")
    p.set_defaults(func=breaker)


def _guard(fn: Callable[[argparse.Namespace, Target], int]) -> Callable[[argparse.Namespace], int]:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            if hasattr(args, "nodes"):
                args.nodes = expand(args.nodes)
            base = base_url(args.url, args.config, args.token_file)
            return fn(args, base)
        except ValueError as exc:
            print(f"syncd: {exc}", file=sys.stderr)
            return exits.USAGE
        except Unreachable as exc:
            print(f"syncd: {exc}", file=sys.stderr)
            return exits.UNREACHABLE
        except ApiError as exc:
            print(f"syncd: {exc}", file=sys.stderr)
            return exits.UNREACHABLE if exc.status == 503 else exits.PROBLEM
    return wrapped


def _status_table(data: dict[str, Any], drifted_only: bool, wide: bool) -> str:
    head = ["NODE", "KUBERNETES", "GPU A/H/U", "SLURM", "OWNER", "FEATURES", "DRIFT",
            "CAUSES / TIMERS", "REASON"]
    rows = [head]
    for n in data["nodes"]:
        if drifted_only and not (n["drift"] or n["causes"] or n["timers"]):
            continue
        g = n["gpus"]
        reason = n["reason"] or "-"
        rows.append([
            n["name"], n["kubernetes"], f"{g['allocatable']}/{g['held']}/{g['usable']}",
            n["slurm"], n["owner"] or "-", ",".join(n["syncd_features"]) or "-",
            "yes" if n["drift"] else "-", "; ".join([*n["causes"], *n["timers"]]) or "-",
            reason if wide or len(reason) <= 40 else reason[:39] + "…",
        ])
    return table(rows) + "\n" + _summary(data["summary"])


def _summary(s: dict[str, Any]) -> str:
    line = (f"{s['nodes']} nodes, {s['drifted']} drifted, {s['drained_by_syncd']} drained by "
            f"syncd, {s['drained_by_others']} held by others, {s['gpus_usable']} GPUs usable; "
            f"kubernetes {'synced' if s['kubernetes_synced'] else 'STALE'}; breaker "
            f"{s['breaker']}; {s['role']}{' (dry-run)' if s['dry_run'] else ''}; Slurm "
            f"{s.get('slurm_version') or 'unknown'} via {s.get('slurm_backend', '?')}")
    if down := sorted(n for n, state in (s.get("event_sinks") or {}).items() if state == "down"):
        line += f"; event sinks DOWN: {', '.join(down)} (events wait in the spool)"
    # The checks go first: the summary stays the last line, where eyes and scripts look.
    checks = [f"{name}: {'ok' if c['ok'] else 'FAILED'}: {c['detail']}"
              for name, c in (s.get("checks") or {}).items()]
    return "\n".join([*checks, line])


def _header(base: Target, args: argparse.Namespace) -> str:
    """The --watch header: when, which daemon, who leads; so a still screen never looks hung."""
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        ready = call(base, "/readyz", timeout=args.timeout)
    except ApiError as exc:
        ready = exc.body  # 503 while not ready: the body still says who is who
    me, leader = ready.get("identity", "?"), ready.get("leader") or ""
    if leader == "single":
        leader = "this replica (leader election off)"
    elif leader == me:
        leader = "this replica"
    return (f"{when}  every {args.interval:g}s  daemon {base} ({me}, {ready.get('role', '?')})"
            f"  leader {leader or 'none'}")


@_guard
def status(args: argparse.Namespace, base: Target) -> int:
    if not args.watch:
        data = call(base, "/api/v1/status", timeout=args.timeout)
        _print_status(data, args)
        s = data["summary"]
        return exits.PROBLEM if s["drifted"] or s["breaker"] == "open" else exits.OK
    while True:
        try:
            head = _header(base, args)
            data = call(base, "/api/v1/status", timeout=args.timeout)
            body = None
        except (Unreachable, ApiError) as exc:  # keep watching: on-call waits for it to return
            head = f"{time.strftime('%Y-%m-%d %H:%M:%S')}  every {args.interval:g}s"
            body = f"syncd: {exc}"
        if args.output in ("table", "wide"):
            print("\x1b[2J\x1b[H" + head, end="\n\n")
        if body is not None:
            print(body, file=sys.stderr if args.output not in ("table", "wide") else sys.stdout)
        else:
            _print_status(data, args)
        sys.stdout.flush()
        time.sleep(args.interval)


def _print_status(data: dict[str, Any], args: argparse.Namespace) -> None:
    if args.output in ("json", "yaml"):
        dump(data, args.output)
    else:
        print(_status_table(data, args.drifted, args.output == "wide"))


@_guard
def plan(args: argparse.Namespace, base: Target) -> int:
    data = call(base, "/api/v1/plan", timeout=args.timeout)
    if args.output in ("json", "yaml"):
        dump(data, args.output)
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


def _each(args: argparse.Namespace, base: Target,
          one: Callable[[str], dict[str, Any]], show: Callable[[str, dict[str, Any]], None]) -> int:
    """Run ``one`` for every node; a refused node is reported and the others still run."""
    results: list[dict[str, Any]] = []
    code = exits.OK
    for node in args.nodes:
        try:
            data = one(node)
        except SlurmUnreachable:
            raise  # the same for every node: say it once
        except ApiError as exc:
            text = str(exc) if node in str(exc) else f"{node}: {exc}"
            print(f"syncd: {text}", file=sys.stderr)
            code = max(code, exits.UNREACHABLE if exc.status == 503 else exits.PROBLEM)
            continue
        results.append(data)
        if args.output not in ("json", "yaml"):
            show(node, data)
    if args.output in ("json", "yaml") and results:
        dump(results[0] if len(args.nodes) == 1 else {"items": results}, args.output)
    return code


@_guard
def why(args: argparse.Namespace, base: Target) -> int:
    return _each(args, base, lambda n: call(base, f"/api/v1/why/{n}", timeout=args.timeout),
                 _why_text)


def _why_text(_: str, data: dict[str, Any]) -> None:
    r = data["report"]
    g = r["gpus"]
    k = data.get("kubernetes") or {}
    where = f" (node {k['name']})" if k.get("name") not in (None, r["name"]) else ""
    print(f"{r['name']}: Kubernetes{where} {r['kubernetes']}; Slurm {r['slurm']}")
    print(f"  GPUs: allocatable {g['allocatable']}, held by pods {g['held']}, "
          f"usable {g['usable']}; syncd features: {', '.join(r['syncd_features']) or '-'}")
    if r["reason"]:
        print(f"  reason: {r['reason']!r} (owner: {r['owner'] or '-'})")
    print(f"  causes: {'; '.join(r['causes']) or 'none'}")
    for t in r["timers"]:
        print(f"  timer: {t}")
    for n in r.get("notes") or ():
        print(f"  note: {n}")
    for c in data.get("planned", []):
        print(f"  next: {c['action']} ({c['why']})")
    for c in data.get("withheld", []):
        print(f"  withheld: {c['action']} ({c['why']})")
    m = data["memory"]
    if m.get("ledger_reason"):
        print(f"  ledger: syncd wrote {m['ledger_reason']!r}"
              + (" (manual drain)" if m.get("manual") else ""))
    if data["history"]:
        print("  recent:")
        for h in data["history"]:
            print(f"    {time.strftime('%H:%M:%S', time.localtime(h['time']))} {h['text']}")


@_guard
def drain(args: argparse.Namespace, base: Target) -> int:
    return _each(args, base, lambda n: call(base, "/api/v1/drain", {"node": n,
                                                                   "reason": args.reason},
                                             timeout=args.timeout),
                 lambda n, d: print(f"{n} drained: {d['reason']}"))


@_guard
def resume(args: argparse.Namespace, base: Target) -> int:
    return _each(args, base, lambda n: call(base, "/api/v1/resume", {"node": n,
                                                                    "force": args.force},
                                             timeout=args.timeout),
                 lambda n, d: print(f"{n} resumed" + (f" ({d['warning']})" if d.get("warning")
                                                      else "")))


@_guard
def breaker(args: argparse.Namespace, base: Target) -> int:
    if args.op == "reset":
        data = call(base, "/api/v1/breaker/reset", {}, timeout=args.timeout)
    else:
        data = call(base, "/api/v1/breaker", timeout=args.timeout)
    if args.output in ("json", "yaml"):
        dump(data, args.output)
    elif args.op == "reset":
        print("breaker reset: drains allowed again (still bounded by the limits)")
    else:
        print(f"breaker {'OPEN' if data['open'] else 'closed'}"
              + (f": {data['why']}" if data["why"] else ""))
        print(f"  drains in window: {len(data['recent_drains'])}; limits: {data['limits']}")
    return exits.PROBLEM if args.op == "status" and data.get("open") else exits.OK
