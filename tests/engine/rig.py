"""The engine assembled from in-process ports (tests/fixtures/fakes.py), for fake-time tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from syncd.core.policy import Capacity, Causes, Policy
from syncd.engine.assembly import Engine, build
from syncd.engine.metrics import Metrics
from syncd.engine.state import StateStore
from syncd.settings.daemon import DaemonSettings
from tests.fixtures.fakes import MemoryKube, MemoryMarker, MemorySlurm, MemoryWal, Recorder

NODES = ("gpu001", "gpu002", "gpu003", "gpu004")
POLICY = Policy(capacity=Capacity(hold_jobs=False), causes=Causes(no_kubernetes_node=False),
                drain_after=30.0, resume_after=60.0)


@dataclass
class Rig:
    kube: MemoryKube
    slurm: MemorySlurm
    events: Recorder
    engine: Engine
    metrics: Metrics
    leader: list[bool] = field(default_factory=lambda: [True])
    marker: MemoryMarker | None = None

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def notify(self, *names: str) -> None:
        self.engine.notify(names)


@asynccontextmanager
async def running(tmp: Path, *, policy: Policy = POLICY, dry_run: bool = False,
                  leader: bool = True, start: bool = True,
                  nodes: tuple[str, ...] = NODES,
                  wal: MemoryWal | None = None) -> AsyncIterator[Rig]:
    kube, slurm, events, metrics = MemoryKube(nodes), MemorySlurm(nodes), Recorder(), Metrics()
    flag = [leader]
    marker = MemoryMarker(kube) if policy.mirror.enabled else None
    engine = build(kube=kube, slurm=slurm, outbox=events, policy=policy,
                   daemon=DaemonSettings(state_dir=str(tmp), dry_run=dry_run, debounce=0.05,
                                         resync_every=300.0, slurm_probe_every=15.0),
                   store=StateStore(tmp), metrics=metrics, is_leader=lambda: flag[0],
                   marker=marker, wal=wal)
    if marker is not None:
        marker.on_change = engine.notify  # what the watcher does for a Node that changed
    rig = Rig(kube, slurm, events, engine, metrics, flag, marker)
    tasks = [asyncio.create_task(c) for c in engine.loops().values()] if start else []
    try:
        yield rig
    finally:
        engine.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.close()
