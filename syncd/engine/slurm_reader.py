"""Reads Slurm for the engine and keeps what the last read said.

It owns the "is Slurm reachable" state that ``/readyz``, ``syncd status`` and the metrics
report, logs an outage once when it starts and once when it ends, and merges an incremental
read into the last full view. Which nodes to read is decided by
:func:`syncd.core.passes.read_scope`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from syncd.core.errors import SlurmError
from syncd.core.model import SlurmView
from syncd.core.passes import ReadScope
from syncd.core.ports import SlurmPort
from syncd.engine.clock import LoopClock
from syncd.engine.metrics import Metrics

log = logging.getLogger(__name__)
_NO_VIEW = SlurmView({}, ok=False)


@dataclass(frozen=True, slots=True)
class SlurmHealth:
    ok: bool = False
    error: str = ""


class SlurmReader:
    def __init__(self, port: SlurmPort, metrics: Metrics, clock: LoopClock) -> None:
        self.port = port
        self.metrics = metrics
        self.clock = clock
        self.health = SlurmHealth()
        self.last: SlurmView = _NO_VIEW
        self._full_at: float | None = None

    def full_read_age(self) -> float:
        if self._full_at is None:
            return float("inf")
        return self.clock.monotonic() - self._full_at

    def failed(self, exc: SlurmError, op: str) -> None:
        """Record a failed call (a read here, or the probe's)."""
        self.metrics.slurm_calls.labels(op, "failed").inc()
        self.metrics.slurm_up.set(0)
        if self.health.ok or not self.health.error:
            log.error("Slurm unreachable", extra={"error": str(exc), "op": op})
        self.health = SlurmHealth(ok=False, error=str(exc))
        # Whatever changed while Slurm was away is unknown: the next read reads everything.
        self._full_at = None

    def succeeded(self, op: str) -> None:
        self.metrics.slurm_calls.labels(op, "ok").inc()
        self.metrics.slurm_up.set(1)
        if not self.health.ok and self.health.error:
            log.info("Slurm reachable again")
        self.health = SlurmHealth(ok=True)

    async def read(self, scope: ReadScope) -> SlurmView:
        """The view a pass plans on; ``ok=False`` when Slurm could not be read."""
        if scope.nothing and self.last.ok:
            return self.last
        if not scope.full:
            try:
                part = await self.port.read_nodes(scope.names)
            except SlurmError as exc:
                log.warning("partial Slurm read failed; reading everything",
                            extra={"error": str(exc)})
                self.metrics.slurm_calls.labels("read_nodes", "failed").inc()
            else:
                self.metrics.slurm_calls.labels("read_nodes", "ok").inc()
                nodes = dict(self.last.nodes)
                nodes.update(part)
                self.last = SlurmView(nodes=nodes, ok=True, boot_time=self.last.boot_time)
                return self.last
        return await self.read_full()

    async def read_full(self) -> SlurmView:
        try:
            view = await self.port.read()
        except SlurmError as exc:
            self.failed(exc, "read")
            return _NO_VIEW
        self.succeeded("read")
        self.last = view
        self._full_at = self.clock.monotonic()
        return view

    async def boot_time(self) -> str | None:
        """slurmctld's boot time, or None when it does not answer (recorded as an outage)."""
        try:
            boot = await self.port.boot_time()
        except SlurmError as exc:
            self.failed(exc, "boot_time")
            return None
        return boot
