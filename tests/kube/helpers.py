"""Running a Watcher against the simulator inside a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from kubernetes_asyncio import client

from syncd.core.policy import GpuResource, Policy
from syncd.kube.watcher import Watcher
from syncd.settings.kube import KubeSettings

POLICY = Policy(gpu_resources=(
    GpuResource("nvidia.com/gpu"), GpuResource("amd.com/gpu"),
    GpuResource("nvidia.com/mig-1g.10gb", "mig_1g_{n}")))


@contextlib.asynccontextmanager
async def running(api: client.ApiClient, *, policy: Policy = POLICY,
                  changes: list[frozenset[str]] | None = None,
                  **settings: Any) -> AsyncIterator[Watcher]:
    """A started Watcher (short back-off); cancelled and awaited on exit."""
    base = KubeSettings(stale_after=2.0, watch_timeout=30.0, reconnect_initial=0.05,
                        reconnect_max=0.3)
    watcher = Watcher(api, replace(base, **settings), policy,
                      on_change=changes.append if changes is not None else None)
    task = asyncio.create_task(watcher.run())
    try:
        yield watcher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
