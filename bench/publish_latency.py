"""Event-loop time per ``Outbox.publish()``, before and after the spool writer (issue 13).

``python bench/publish_latency.py --baseline efaf744`` measures the tree it runs from and the
syncd of another revision (exported with ``git archive`` to a temporary directory), each in a
child process, and prints them side by side with the ratios. Every run publishes
``--publishes`` batches of ``--per-publish`` drift events (~700 bytes each, as
bench/events_bench.py makes them), one batch every ``--every`` seconds like reconcile passes,
for each fsync policy, with no sink (so only the spool is measured), and reports:

- ``publish`` - how long one ``publish()`` call holds the event loop (p50 / p99 / max);
- ``loop lag`` - how late a 1 ms timer fires meanwhile (p99 / max): what every other task of
  the daemon feels, including the writer thread's share of the GIL;
- ``durable`` - (new tree only) from ``publish()`` until ``await durable()`` returns (p50 /
  p99): when the events are in the spool.

Run it as a script, not with ``-m``: the child must import syncd from PYTHONPATH, not from the
working directory. Not a test; numbers vary with the machine's load, compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ("off", "batch", "always")


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def one_policy(fsync: str, args: argparse.Namespace) -> dict[str, float]:
    from bench.events_bench import sample  # after sys.path was extended (see child())
    from syncd.events import Outbox
    from syncd.settings.events import EventsSettings, MqttSink, RedisSink

    cfg = EventsSettings(fsync=fsync, redis=RedisSink(enabled=False),
                         mqtt=MqttSink(enabled=False))
    events = sample(args.per_publish)
    spent: list[float] = []
    lags: list[float] = []
    durable: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - start - 0.001)

    async def timed_durable(outbox: Any, start: float) -> None:
        await outbox.durable()
        durable.append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory(prefix="syncd-bench-spool-") as spool:
        outbox = Outbox(cfg, cluster="bench", instance="b", spool_dir=Path(spool), sinks=[])
        tick = asyncio.create_task(ticker())
        waits = []
        for _ in range(args.publishes):
            start = time.perf_counter()
            outbox.publish(events)
            spent.append(time.perf_counter() - start)
            if hasattr(outbox, "durable"):
                waits.append(asyncio.create_task(timed_durable(outbox, start)))
            await asyncio.sleep(args.every)
        await asyncio.gather(*waits)
        stop.set()
        await tick
        dropped = outbox.spool_stats().dropped if hasattr(outbox, "spool_stats") else 0
        await outbox.aclose(flush_timeout=1)
    us = 1e6
    return {
        "publish_p50": quantile(spent, 0.5) * us, "publish_p99": quantile(spent, 0.99) * us,
        "publish_max": max(spent) * us, "publish_mean": statistics.fmean(spent) * us,
        "lag_p99": quantile(lags, 0.99) * us, "lag_max": max(lags, default=0.0) * us,
        "durable_p50": quantile(durable, 0.5) * us, "durable_p99": quantile(durable, 0.99) * us,
        "dropped": float(dropped),
    }


def child(args: argparse.Namespace) -> None:
    sys.path.append(str(ROOT))  # for bench.*; syncd comes first from PYTHONPATH
    results = {p: asyncio.run(one_policy(p, args)) for p in POLICIES}
    import syncd

    results["_where"] = {"syncd": str(Path(syncd.__file__).parent)}  # type: ignore[dict-item]
    print(json.dumps(results))


def run_child(pythonpath: str, args: argparse.Namespace) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child",
            "--publishes", str(args.publishes), "--per-publish", str(args.per_publish),
            "--every", str(args.every)]
    env = {**os.environ, "PYTHONPATH": pythonpath}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, cwd="/")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def fmt(row: dict[str, float], *keys: str) -> str:
    return " / ".join(f"{row[k]:,.0f}" for k in keys)


def ratio(old: dict[str, float], new: dict[str, float], key: str) -> str:
    return f"{old[key] / new[key]:,.0f}x" if new[key] > 0 else "-"


def main(args: argparse.Namespace) -> None:
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="syncd-bench-baseline-") as old_tree:
        if args.baseline:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "syncd"],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", old_tree], input=archive, check=True)
        rows = {"new": run_child(str(ROOT), args)}
        if args.baseline:
            rows["old"] = run_child(old_tree, args)
    print(f"{args.publishes} publish() calls of {args.per_publish} events, one every "
          f"{args.every * 1000:g} ms, no sink; times in microseconds; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    head = ["fsync", "tree", "publish p50 / p99 / max", "loop lag p99 / max",
            "durable p50 / p99", "dropped"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for policy in POLICIES:
        for tree, label in (("old", args.baseline), ("new", "this tree")):
            if tree not in rows:
                continue
            r = rows[tree][policy]
            durable = fmt(r, "durable_p50", "durable_p99") if tree == "new" else "-"
            print(f"| {policy} | {label} | {fmt(r, 'publish_p50', 'publish_p99', 'publish_max')}"
                  f" | {fmt(r, 'lag_p99', 'lag_max')} | {durable} | {r['dropped']:,.0f} |")
        if "old" in rows:
            old, new = rows["old"][policy], rows["new"][policy]
            print(f"| {policy} | old / new | {ratio(old, new, 'publish_p50')} / "
                  f"{ratio(old, new, 'publish_p99')} / {ratio(old, new, 'publish_max')} | "
                  f"{ratio(old, new, 'lag_p99')} / {ratio(old, new, 'lag_max')} | | |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishes", type=int, default=300)
    parser.add_argument("--per-publish", type=int, default=50)
    parser.add_argument("--every", type=float, default=0.005, help="seconds between calls")
    parser.add_argument("--baseline", default="", help="a git revision to compare with")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    main(parser.parse_args())
