"""Watcher benchmark: 10,000 GPU nodes and 100,000 pods; time to ``synced`` and watcher RSS.

The simulator runs in its own process so the RSS measured here is the watcher's. Goals (issue 4):
synced in < 10 s, RSS < 250 MB. Run: ``python -m bench.kube_bench [--nodes N --pods N]``.

``--sizes 5000,10000,20000,40000`` (issue 17 item 6: first sync linear in cluster size) measures
each size in a fresh interpreter (10 pods a node), so no size inherits another's heap, and prints
the growth table: seconds to synced, RSS, and a least-squares line through them with its value at
100,000 nodes / 1,000,000 pods.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench import plots
from kubesim.client import SimClient
from kubesim.server import kubeconfig_text, start_sim_process
from syncd.core.policy import Policy
from syncd.kube.client import make_api_client
from syncd.kube.watcher import Watcher
from syncd.settings.kube import KubeSettings

TOKEN = "bench-token"


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


async def bench(nodes: int, pods: int, page: int) -> dict[str, float]:
    with start_sim_process("--token", TOKEN, "--history", str(pods + nodes + 1000)) as (_, url):
        async with SimClient(url, TOKEN) as sim:
            t0 = time.monotonic()
            await sim.pool(nodes)
            t1 = time.monotonic()
            await sim.fill_pods(pods, slurm_every=50)
            t2 = time.monotonic()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "kubeconfig"
            path.write_text(kubeconfig_text(url, TOKEN))
            settings = KubeSettings(kubeconfig=str(path), list_page_size=page)
            api = await make_api_client(settings)
        rss_before = rss_mb()
        watcher = Watcher(api, settings, Policy())
        start = time.monotonic()
        task = asyncio.create_task(watcher.run())
        try:
            while not watcher.synced:  # noqa: ASYNC110 - synced is a property, not an event
                await asyncio.sleep(0.01)
            synced = time.monotonic() - start
            v0 = time.monotonic()
            view = watcher.view()
            first_view = time.monotonic() - v0
            v0 = time.monotonic()
            watcher.view()
            again_view = time.monotonic() - v0
            held = sum(sum(n.gpu_held.values()) for n in view.nodes.values())
            rss_after = rss_mb()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await api.close()
    return {
        "nodes": len(view.nodes), "pods": pods, "gpus_held": held,
        "sim_create_nodes_s": round(t1 - t0, 2), "sim_create_pods_s": round(t2 - t1, 2),
        "time_to_synced_s": round(synced, 2), "first_view_ms": round(first_view * 1000, 1),
        "cached_view_ms": round(again_view * 1000, 3),
        "rss_before_mb": round(rss_before, 1), "rss_synced_mb": round(rss_after, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "list_requests": watcher.stats.requests,
    }


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares ``y = a + b x``: (a, b)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return my - b * mx, b


def growth(sizes: list[int], page: int) -> list[dict[str, float]]:
    rows = []
    for nodes in sizes:
        out = subprocess.run(
            [sys.executable, "-m", "bench.kube_bench", "--nodes", str(nodes),
             "--pods", str(nodes * 10), "--page", str(page)],
            check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def growth_table(rows: list[dict[str, float]]) -> str:
    lines = ["| nodes / pods | seconds to synced | µs per object | RSS synced | peak RSS |",
             "| --- | --- | --- | --- | --- |"]
    for r in rows:
        per = r["time_to_synced_s"] * 1e6 / (r["nodes"] + r["pods"])
        lines.append(f"| {r['nodes']:,} / {r['pods']:,} | {r['time_to_synced_s']:.2f} s "
                     f"| {per:.1f} | {r['rss_synced_mb']:.0f} MB | {r['peak_rss_mb']:.0f} MB |")
    xs = [float(r["nodes"]) for r in rows]
    if len(rows) >= 2:
        t0, t1 = fit(xs, [r["time_to_synced_s"] for r in rows])
        m0, m1 = fit(xs, [r["peak_rss_mb"] for r in rows])
        lines += ["", f"Fit: time = {t0:.2f} s + {t1 * 1e6:.1f} µs x nodes "
                      f"(100,000 nodes: {t0 + t1 * 1e5:.1f} s); peak RSS = {m0:.0f} MB + "
                      f"{m1 * 1024:.2f} KB x nodes (100,000 nodes: {m0 + m1 * 1e5:.0f} MB)."]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nodes", type=int, default=10_000)
    p.add_argument("--pods", type=int, default=100_000)
    p.add_argument("--page", type=int, default=KubeSettings().list_page_size)
    p.add_argument("--sizes", default="", help="comma-separated node counts: the growth table")
    p.add_argument("--plot", default="", help="with --sizes: write the growth plot (SVG) here")
    args = p.parse_args()
    if args.sizes:
        rows = growth([int(n) for n in args.sizes.split(",")], args.page)
        print(growth_table(rows))
        if args.plot:
            Path(args.plot).write_text(plots.growth(
                rows, "First sync (list + watch, decoded) and peak RSS against cluster size"))
        return
    print(json.dumps(asyncio.run(bench(args.nodes, args.pods, args.page)), indent=2))


if __name__ == "__main__":
    main()
