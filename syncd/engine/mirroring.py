"""Writes the mirror of Slurm's state onto Kubernetes nodes (``policy.mirror``, decided by
:func:`syncd.core.mirror.mirror_plan`) after a pass's Slurm writes, and reports each write as an
``io.syncd.node.mirrored.v1`` event.

Only the leader calls it, outside dry run for the writes themselves. What was just written is
not written again while the watch has not shown it yet (``SETTLE``), so a watch event slower
than the next pass does not double a write; in dry run a change is reported once. A failed
write backs the node off (``policy.write_backoff``), so an API server refusing every write
(RBAC missing) is not asked again every second; a 409 on the taints is retried on the next pass,
which reads the Node again. At most ``MAX_PER_PASS`` nodes are written per pass, ``PARALLEL``
at a time: a mass drain in Slurm is spread over passes instead of holding the reconcile lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace

from syncd.core.events import MirroredData, MirrorOutcome, MirrorState, TaintChange
from syncd.core.memory import Memory
from syncd.core.mirror import MirrorChange, mirror_plan, mirror_taint
from syncd.core.model import DriftEvent, KubeView, SlurmView
from syncd.core.policy import Policy
from syncd.core.ports import MarkConflict, MarkError, NodeMarker
from syncd.engine.clock import LoopClock
from syncd.engine.metrics import Metrics

log = logging.getLogger(__name__)
#: A write not yet seen in the watched view is not repeated for this long (seconds).
SETTLE = 10.0
MAX_PER_PASS = 200
PARALLEL = 8


class Mirroring:
    def __init__(self, marker: NodeMarker, *, policy: Policy, metrics: Metrics,
                 clock: LoopClock, dry_run: bool, more: Callable[[], None]) -> None:
        self.marker = marker
        self.policy = policy
        self.metrics = metrics
        self.clock = clock
        self.dry_run = dry_run
        self.more = more
        self.taint = mirror_taint(policy)
        self._sent: dict[str, tuple[object, float]] = {}  # node -> (change key, until)
        self._failures: dict[str, tuple[int, float]] = {}  # node -> (count, retry at)
        self._unresponsive: Mapping[str, float] = {}  # node -> first seen only NOT_RESPONDING

    async def apply(self, k8s: KubeView, slurm: SlurmView, memory: Memory, *,
                    skip: Collection[str] = ()) -> list[DriftEvent]:
        """Write what differs; returns the events of the writes made (or, in dry run, due)."""
        now = self.clock.monotonic()
        plan = mirror_plan(k8s, slurm, memory, self.policy, now=now,
                           unresponsive=self._unresponsive, skip=skip)
        self._unresponsive = plan.unresponsive
        self.metrics.mirrored.set(plan.unavailable)
        pending = {c.node for c in plan.changes}
        for table in (self._sent, self._failures):
            for node in [n for n in table if n not in pending and n not in skip]:
                del table[node]  # converged: the view shows what Slurm says
        due = [c for c in plan.changes if self._due(c, now)]
        if len(due) > MAX_PER_PASS:
            due = due[:MAX_PER_PASS]
            self.more()  # another pass soon, for the rest
        gate = asyncio.Semaphore(PARALLEL)

        async def one(c: MirrorChange) -> DriftEvent:
            async with gate:
                outcome, error = await self._write(c)
            self._settle(c, outcome, error)
            return replace(self._event(c, outcome, error, slurm), occurred_at=self.clock.now())

        return list(await asyncio.gather(*(one(c) for c in due)))

    def _due(self, c: MirrorChange, now: float) -> bool:
        sent = self._sent.get(c.node)
        if sent is not None and _covered(c.key, sent[0]) and (self.dry_run or now < sent[1]):
            return False
        failed = self._failures.get(c.node)
        return failed is None or now >= failed[1]

    async def _write(self, c: MirrorChange) -> tuple[str, str]:
        if self.dry_run:
            return "dry_run", ""
        what = "condition"
        try:
            if c.condition is not None:
                await self.marker.set_condition(c.kube_node, c.condition)
                self.metrics.mirror_writes.labels("condition", "ok").inc()
            if c.taint is not None:
                what = "taint"
                wrote = await self.marker.set_taint(c.kube_node, self.taint, c.taint)
                self.metrics.mirror_writes.labels("taint", "ok" if wrote else "unchanged").inc()
        except MarkConflict as exc:
            self.metrics.mirror_writes.labels(what, "conflict").inc()
            return "conflict", str(exc)
        except MarkError as exc:
            self.metrics.mirror_writes.labels(what, "failed").inc()
            return "failed", str(exc)
        return "ok", ""

    def _settle(self, c: MirrorChange, outcome: str, error: str) -> None:
        now = self.clock.monotonic()
        if outcome in ("ok", "dry_run"):
            self._sent[c.node] = (c.key, now + SETTLE)
            self._failures.pop(c.node, None)
            log.info("mirrored Slurm's state onto the Kubernetes node", extra={
                "node": c.node, "kube_node": c.kube_node, "outcome": outcome,
                "unavailable": c.unavailable})
            return
        self._sent.pop(c.node, None)
        if outcome == "failed":
            cfg = self.policy.write_backoff
            count = self._failures.get(c.node, (0, 0.0))[0] + 1
            wait = min(cfg.base * 2 ** (count - 1), cfg.max)
            self._failures[c.node] = (count, now + wait)
            log.error("mirror write failed", extra={
                "node": c.node, "kube_node": c.kube_node, "error": error, "retry_in": wait})
        else:
            log.info("mirror write conflicted; retried on the next pass",
                     extra={"node": c.node, "error": error})

    def _event(self, c: MirrorChange, outcome: str, error: str, slurm: SlurmView) -> DriftEvent:
        return MirroredData(
            kubernetes_node=c.kube_node,
            state=MirrorState.UNAVAILABLE if c.unavailable else MirrorState.AVAILABLE,
            why=c.why, condition=c.condition,
            taint=None if c.taint is None else TaintChange(self.taint.key, c.taint),
            outcome=MirrorOutcome(outcome), error=error, slurm=slurm.nodes.get(c.node),
        ).event(c.node)


def _covered(key: tuple[object, object], sent: object) -> bool:
    """Everything ``key`` would write was in the write ``sent``: the watch has shown part of
    that write (the condition, say) and not the rest yet (the taint, a separate request)."""
    if not isinstance(sent, tuple) or len(sent) != 2:
        return False
    return all(part is None or part == was for part, was in zip(key, sent, strict=True))
