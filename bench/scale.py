"""Scale benchmark: syncd against a 30 s polling baseline, side by side, in one run.

    python -m bench [--quick] [--sizes 1000,5000,10000] [--profile DIR] [--out bench/RESULTS.md]

For each size, two identical worlds, one per system under test: a real Slurm sandbox
(``--real`` nodes with slurmd, the rest ghosts driven through slurmctld) and the Kubernetes
simulator in its own process (8 GPUs and 10 pods per node). syncd and the baseline
(bench/baseline.py) go through the same scenarios: first full sync, a quiet steady window,
latency of changes under pod churn, and a mass event (10 % of nodes NotReady at once); syncd
also once more with the breaker on. syncd's timed phases run in the baseline's idle gaps
between polls (bench/runs.py, side_by_side).
``--quick`` (one small size, short windows, an 8 s baseline interval) is what CI runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.harness import Sandbox, sim_process
from bench.report import keep_other_sections, latency_plot, render, summary
from bench.runs import Knobs, World, side_by_side
from bench.workload import CPU_PODS, GPU_PODS, Cluster
from kubesim.client import SimClient

TOKEN = "bench-token"
FULL = Knobs()
QUICK = Knobs(changes=40, change_span=4.0, churn_rate=5.0, steady=5.0, interval=8.0,
              mass_real=6)


@contextlib.asynccontextmanager
async def world(work: Path, total: int, real: int,
                setup: dict[str, float]) -> AsyncIterator[World]:
    """A Slurm sandbox and a simulator holding the cluster, for one system under test."""
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    t = time.monotonic()
    box = await asyncio.to_thread(Sandbox.start, work / "slurm", total, min(real, total))
    setup["sandbox"] = setup.get("sandbox", 0.0) + time.monotonic() - t
    try:
        kubeconfig = work / "kubeconfig"
        history = (GPU_PODS + CPU_PODS + 2) * total + 100_000
        with sim_process(TOKEN, kubeconfig, history, work / "sim.log") as (_pid, url):
            async with SimClient(url, TOKEN) as sim:
                t = time.monotonic()
                cluster = await Cluster.create(sim, total, box.width, box.real)
                setup["simulator"] = setup.get("simulator", 0.0) + time.monotonic() - t
                yield World(box, cluster, kubeconfig, work)
    finally:
        await asyncio.to_thread(box.stop)


async def one_size(total: int, real: int, knobs: Knobs, work: Path) -> dict[str, Any]:
    setup: dict[str, float] = {}
    async with contextlib.AsyncExitStack() as stack:
        sw = await stack.enter_async_context(world(work / "syncd", total, real, setup))
        bw = (await stack.enter_async_context(world(work / "baseline", total, real, setup))
              if knobs.baseline else None)
        t = time.monotonic()
        syncd, base = await side_by_side(sw, bw, knobs)
        setup["runs"] = time.monotonic() - t
        version = sw.box.version()
    return {"nodes": total, "real_slurmd": sw.box.real, "pods": total * (GPU_PODS + CPU_PODS),
            "setup": setup, "syncd": syncd, "baseline": base, "slurm_version": version}


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else float("nan")


def _dump_tasks() -> None:
    """SIGUSR1: where every task of the harness waits, down the chain of coroutines it awaits
    (``Task.print_stack`` shows only the outermost one), so a stuck run explains itself."""
    for task in asyncio.all_tasks():
        print(f"task {task.get_name()}:", file=sys.stderr)
        step: Any = task.get_coro()
        while step is not None:
            frame = getattr(step, "cr_frame", None) or getattr(step, "ag_frame", None)
            if frame is not None:
                print(f"  {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_qualname}",
                      file=sys.stderr)
            step = getattr(step, "cr_await", None) or getattr(step, "ag_await", None)


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _dump_tasks)
    knobs = QUICK if args.quick else FULL
    if args.profile:
        knobs = replace(knobs, profile=args.profile)
    if args.no_baseline:
        knobs = replace(knobs, baseline=False)
    if args.hold_baseline:
        knobs = replace(knobs, hold=True)
    knobs = replace(knobs, redis_url=args.redis_url)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [200] if args.quick else [1000, 5000, 10000])
    real = args.real or (40 if args.quick else 200)
    base = Path(args.work or tempfile.mkdtemp(prefix="syncd-scale-"))
    out = []
    try:
        for n in sizes:
            t = time.monotonic()
            res = await one_size(n, real, knobs, base / f"n{n}")
            res["wall_seconds"] = time.monotonic() - t
            s, b = res["syncd"], res["baseline"]
            res["ratios"] = {} if b is None else {
                "mean_latency": ratio(b["latency"]["mean"], s["latency"]["mean"]),
                "p99_latency": ratio(b["latency"]["p99"], s["latency"]["p99"]),
                "first_sync": ratio(b["first_sync"]["seconds"], s["first_sync"]["seconds"]),
                "mass_calls": ratio(b["mass"]["drain_calls"], s["mass"]["drain_calls"]),
                "mass_seconds": ratio(b["mass"]["seconds"], s["mass"]["seconds"]),
            }
            print(summary(res) if b is not None else json.dumps(s, default=str), flush=True)
            out.append(res)
    finally:
        if not args.work and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return out


def write_results(out: Path, results: list[dict[str, Any]], wall: float,
                  argv: list[str] | None) -> None:
    """RESULTS.md (keeping the sections other benchmarks wrote into it) and, beside it, the
    latency distribution of the largest size (latency-cdf.svg)."""
    text = render(results, wall, argv)
    if out.exists():
        text = keep_other_sections(text, out.read_text())
    out.write_text(text)
    if results:
        (out.parent / "latency-cdf.svg").write_text(latency_plot(results))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one small size, CI-sized (< 60 s)")
    ap.add_argument("--sizes", default="", help="comma-separated node counts")
    ap.add_argument("--real", type=int, default=0, help="nodes with a real slurmd (200)")
    ap.add_argument("--profile", default="", help="py-spy the latency phase into DIR")
    ap.add_argument("--no-baseline", action="store_true", help="syncd only (before/after runs)")
    ap.add_argument("--hold-baseline", action="store_true",
                    help="hold the baseline for syncd's runs even where a gap between its "
                         "polls fits them (what sizes whose polls are too long get anyway)")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0",
                    help="the Redis syncd publishes its events to (a unique stream, deleted)")
    ap.add_argument("--out", default="", help="write the Markdown results here")
    ap.add_argument("--json", default="", help="write the raw results here")
    ap.add_argument("--render", default="", help="only re-render --out from a --json file")
    ap.add_argument("--work", default="", help="work directory (kept)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    args = ap.parse_args(argv)
    args.profile = Path(args.profile).resolve() if args.profile else None
    if args.render:
        data = json.loads(Path(args.render).read_text())
        write_results(Path(args.out or "bench/RESULTS.md"), data["results"], data["wall"],
                      data["argv"])
        return 0
    started = time.monotonic()
    # SIGTERM unwinds like Ctrl-C, so every sandbox, process and Redis stream is cleaned up.
    signal.signal(signal.SIGTERM, _interrupt)
    results = asyncio.run(main_async(args))
    wall = time.monotonic() - started
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"results": results, "wall": wall, "argv": argv if argv is not None else sys.argv[1:]},
            indent=1, default=str))
    if args.out and not args.no_baseline:
        write_results(Path(args.out), results, wall, argv)
    print(f"total wall time {wall:.0f} s")
    return 0
