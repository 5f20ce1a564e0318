"""Benchmark of the scontrol backend against real slurmctld sandboxes (not a test).

    python -m bench.slurm_bench [--keep DIR]

Starts a 64-node sandbox, then a 2,000-node one (64 real slurmds + 1,936 ghost nodes without
slurmd, see scripts/slurm-sandbox), and prints: full reads (port.read = scontrol show node +
show config + squeue), per-update latency, and a 1,000-node drain with its slurmctld call count.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from syncd.core.batching import batch
from syncd.core.model import Action, ActionKind, NodeChange
from syncd.settings.slurm import SlurmSettings
from syncd.slurm.parse import parse_nodes
from syncd.slurm.scontrol import ScontrolPort

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slurm-sandbox"
Row = tuple[str, str, str]


def sandbox(cmd: str, path: Path, *args: str) -> None:
    subprocess.run([str(SCRIPT), cmd, str(path), *args], check=True, capture_output=True,
                   timeout=900)


def fast(conf: Path) -> SlurmSettings:
    """No rate limit, so latency is Slurm's own and not the token bucket's."""
    return SlurmSettings(conf=str(conf), calls_per_second=10_000.0, burst=10_000,
                         timeout=30.0)


async def timed(fn: Callable[[], Awaitable[object]], n: int) -> list[float]:
    out: list[float] = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def ms(samples: list[float]) -> str:
    p95 = statistics.quantiles(samples, n=20)[-1] if len(samples) >= 20 else max(samples)
    return f"median {statistics.median(samples):.1f} ms, p95 {p95:.1f} ms (n={len(samples)})"


async def small(conf: Path) -> list[Row]:
    port = ScontrolPort(fast(conf))
    rows: list[Row] = []
    view = await port.read()
    rows.append(("read 64 nodes (port.read)", ms(await timed(port.read, 20)),
                 f"{len(view.nodes)} nodes, 3 commands"))
    feats = [("gpu", f"gpu_avail_{i % 8}") for i in range(50)]
    it = iter(feats)

    async def set_features() -> None:
        await port.apply(Action(ActionKind.SET_FEATURES, "gpu001", ("gpu001",),
                                features=next(it)))

    rows.append(("update features, 1 node", ms(await timed(set_features, 50)), "1 call each"))
    toggle = iter(range(100))

    async def drain_resume() -> None:
        if next(toggle) % 2 == 0:
            await port.apply(Action(ActionKind.DRAIN, "gpu002", ("gpu002",),
                                    reason="syncd: bench"))
        else:
            await port.apply(Action(ActionKind.RESUME, "gpu002", ("gpu002",)))

    rows.append(("update drain/resume, 1 node", ms(await timed(drain_resume, 50)),
                 "1 call each"))
    everyone = tuple(f"gpu{i:03d}" for i in range(1, 65))

    async def all64() -> None:
        await port.apply(Action(ActionKind.SET_FEATURES, "gpu[001-064]", everyone,
                                features=("gpu", "gpu_avail_8")))

    rows.append(("update features, 64 nodes", ms(await timed(all64, 20)), "1 hostlist call"))
    return rows


async def large(conf: Path) -> list[Row]:
    rows: list[Row] = []
    port = ScontrolPort(fast(conf))
    view = await port.read()
    rows.append(("read 2,000 nodes (port.read)", ms(await timed(port.read, 10)),
                 f"{len(view.nodes)} nodes"))
    text = await port.runner.run("show_node", ["scontrol", "-o", "-d", "show", "node"])

    async def parse() -> None:
        parse_nodes(text)

    rows.append(("  of which parsing in Python", ms(await timed(parse, 10)),
                 f"{len(text) // 1024} KiB of scontrol output"))
    # The drain uses the default settings: 20 calls/s with a burst of 10.
    default = ScontrolPort(SlurmSettings(conf=str(conf)))
    names = [f"gpu{i:04d}" for i in range(65, 1065)]
    changes = [NodeChange(n, ActionKind.DRAIN, why="bench", reason="syncd: bench drain")
               for n in names]
    actions = list(batch(changes, 100))
    t = time.perf_counter()
    for a in actions:
        await default.apply(a)
    took = (time.perf_counter() - t) * 1000
    after = await default.read()
    drained = sum(1 for n in names if after.nodes[n].drained)
    rows.append(("drain 1,000 nodes", f"{took:.0f} ms total",
                 f"{default.runner.calls['update']} scontrol calls, {drained} drained"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", help="directory for the sandboxes (default: a temp dir)")
    args = ap.parse_args()
    base = Path(args.keep or tempfile.mkdtemp(prefix="syncd-bench-"))
    rows: list[Row] = []
    for name, nodes, ghosts, fn in (("n64", 64, 0, small), ("n2000", 64, 1936, large)):
        d = base / name
        t = time.perf_counter()
        sandbox("start", d, "--nodes", str(nodes), "--ghosts", str(ghosts))
        rows.append((f"sandbox start {nodes}+{ghosts}", f"{time.perf_counter() - t:.1f} s", ""))
        try:
            rows += asyncio.run(fn(d / "etc" / "slurm.conf"))
        finally:
            sandbox("stop", d)
    width = max(len(r[0]) for r in rows)
    wide = max(len(r[1]) for r in rows)
    for what, value, note in rows:
        print(f"{what:<{width}}  {value:<{wide}}  {note}")


if __name__ == "__main__":
    main()
