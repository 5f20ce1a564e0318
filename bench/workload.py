"""The Kubernetes side of the benchmark: the pool, its pods, the changes and the churn.

Each node has 8 GPUs and 10 pods: 6 one-GPU pods (namespace ``jobs``) and 4 CPU-only pods
(namespace ``cpu``), so every node starts at ``gpu_avail_2``. A change is either the node going
NotReady (expect DRAIN in slurmctld) or a 2-GPU pod starting on it (expect ``gpu_avail_0``).
Nodes are handed out from shuffled pools so no two scenarios touch the same node.

Ghost nodes (no slurmd) read UNKNOWN+NOT_RESPONDING; syncd drains them like any node that is
out only because its slurmd is silent, and feature writes work on them too. NotReady changes
still use the ``real`` pool (a realistic node), as does part of each mass event; GPU changes
and pod churn use ghosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.harness import Expect, SlurmObserver
from kubesim.client import SimClient

GPUS, GPU_PODS, CPU_PODS = 8, 6, 4


@dataclass
class Cluster:
    sim: SimClient
    names: list[str]
    gpu_pods: dict[str, list[str]] = field(default_factory=dict)
    cpu_pods: dict[str, list[str]] = field(default_factory=dict)
    avail: dict[str, int] = field(default_factory=dict)
    free: list[str] = field(default_factory=list)
    free_real: list[str] = field(default_factory=list)
    churn_nodes: list[str] = field(default_factory=list)
    churned: int = 0

    @classmethod
    async def create(cls, sim: SimClient, count: int, digits: int, real: int,
                     seed: int = 7) -> Cluster:
        names = await sim.pool(count, prefix="gpu", digits=digits, gpus=GPUS)
        await sim.fill_pods(GPU_PODS * count, gpus=1, namespace="jobs", prefix="job")
        await sim.fill_pods(CPU_PODS * count, gpus=0, namespace="cpu", prefix="cpu")
        c = cls(sim, names)
        for i in range(GPU_PODS * count):
            c.gpu_pods.setdefault(names[i % count], []).append(f"job-{i:06d}")
        for i in range(CPU_PODS * count):
            c.cpu_pods.setdefault(names[i % count], []).append(f"cpu-{i:06d}")
        c.avail = dict.fromkeys(names, GPUS - GPU_PODS)
        rng = random.Random(seed)
        c.free_real = names[:real]
        rng.shuffle(c.free_real)
        order = names[real:]
        rng.shuffle(order)
        n_churn = max(10, count // 10)
        c.churn_nodes, c.free = order[:n_churn], order[n_churn:]
        return c

    def take(self, n: int, *, real: bool = False) -> list[str]:
        pool = self.free_real if real else self.free
        if n > len(pool):
            raise RuntimeError(f"{len(pool)} unused {'real' if real else 'ghost'} nodes, "
                               f"{n} wanted")
        out = pool[:n]
        del pool[:n]
        return out

    def take_changes(self, n: int, notready_every: int) -> list[tuple[str, str]]:
        """(node, kind) for ``n`` changes: every ``notready_every``-th a NotReady on a real
        node, the others a GPU-taking pod on a ghost."""
        kinds = ["notready" if i % notready_every == 0 else "gpus" for i in range(n)]
        real = iter(self.take(kinds.count("notready"), real=True))
        ghost = iter(self.take(kinds.count("gpus")))
        return [(next(real) if k == "notready" else next(ghost), k) for k in kinds]

    # --- changes ---------------------------------------------------------------------------

    async def change(self, obs: SlurmObserver, node: str, kind: str, tag: str) -> Expect:
        t0, wall0 = time.monotonic(), time.time()
        if kind == "notready":
            await self.sim.set_ready(node, False)
            return obs.expect(node, "DRAIN", t0, kind, wall0)
        await self.sim.start_pods([{"name": f"take-{tag}-{node}", "node": node,
                                    "namespace": "jobs", "gpus": 2}])
        self.avail[node] = 0
        return obs.expect(node, "gpu_avail_0", t0, kind, wall0)

    async def spread(self, obs: SlurmObserver, changes: list[tuple[str, str]], span: float,
                     tag: str, seed: int = 11) -> list[Expect]:
        """The changes at jittered even times over ``span`` seconds."""
        rng = random.Random(seed)
        start = time.monotonic()
        out: list[Expect] = []
        step = span / max(1, len(changes))
        for i, (node, kind) in enumerate(changes):
            at = start + (i + rng.random()) * step
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            out.append(await self.change(obs, node, kind, tag))
        return out

    async def mass_notready(self, obs: SlurmObserver, nodes: list[str], watched: list[str],
                            concurrency: int = 64) -> tuple[float, list[Expect]]:
        """All ``nodes`` NotReady at once (as fast as the API takes it); returns t0 and the
        DRAIN expectations of ``watched``."""
        t0 = time.monotonic()
        gate = asyncio.Semaphore(concurrency)

        async def one(node: str) -> None:
            async with gate:
                await self.sim.set_ready(node, False)

        await asyncio.gather(*(one(n) for n in nodes))
        return t0, [obs.expect(n, "DRAIN", t0, "mass") for n in watched]

    def take_mass(self, real: int) -> tuple[list[str], list[str]]:
        """10 % of the cluster for a mass event: (all nodes, the real ones among them)."""
        total = max(1, len(self.names) // 10)
        r = self.take(min(real, total), real=True)
        return r + self.take(total - len(r)), r

    # --- background churn ------------------------------------------------------------------

    async def churn(self, rate: float, stop: asyncio.Event, seed: int = 3) -> None:
        """Pods finishing and being replaced on the churn nodes, ``rate`` per second, every
        other one a GPU pod (a transient gpu_avail change syncd may write, as in production)."""
        rng = random.Random(seed)
        while not stop.is_set():
            node = rng.choice(self.churn_nodes)
            gpu = self.churned % 2 == 0
            pods = (self.gpu_pods if gpu else self.cpu_pods)[node]
            ns = "jobs" if gpu else "cpu"
            k = rng.randrange(len(pods))
            old, new = pods[k], f"r{self.churned}-{node}"
            await self.sim.remove_pod(ns, old)
            await self.sim.start_pods([{"name": new, "node": node, "namespace": ns,
                                        "gpus": 1 if gpu else 0}])
            pods[k] = new
            self.churned += 1
            await _sleep_or(stop, 1.0 / rate)


async def _sleep_or(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def with_churn(cluster: Cluster, rate: float,
                     body: Callable[[], Awaitable[list[Expect]]]) -> list[Expect]:
    stop = asyncio.Event()
    task = asyncio.create_task(cluster.churn(rate, stop))
    try:
        return await body()
    finally:
        stop.set()
        await task


async def sim_requests(sim: SimClient) -> dict[str, int]:
    """The simulator's API-server request counters (scenario calls not included)."""
    s = await sim.stats()
    verbs = {k: int(v) for k, v in s["by_verb"].items()}
    return {"total": sum(verbs.values()), "GET": verbs.get("GET", 0),
            "watches": int(s["watches_opened"]),
            "writes": sum(v for k, v in verbs.items() if k != "GET")}
