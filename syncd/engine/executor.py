"""Carries out a plan's Slurm writes, one batched action at a time, and reports each outcome.

A failed write is logged, counted and reported as an ``action.failed`` event; it never stops
the remaining actions (each is independent), and the planner sees the unchanged Slurm state on
the next read and plans it again.

With a write-ahead log (the outbox), each write is announced before it is made: its intent is
committed to the spool before the Slurm call and replaced by its outcome events after it, in
one transaction, so a kill -9 at any point leaves either the intent (resolved against Slurm
at the next start, syncd.core.recovery) or the events. When the spool cannot take the intent,
``events.on_spool_failure`` decides: ``continue`` writes anyway (the events wait in memory),
``hold`` does not write (outcome ``held``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from syncd.core.errors import SlurmError
from syncd.core.model import (
    Action,
    DriftEvent,
    EventType,
    KubeView,
    NodeChange,
    SlurmView,
    stamped,
)
from syncd.core.ports import SlurmPort, SpoolUnavailable, WriteAheadLog
from syncd.core.recovery import intent_record
from syncd.core.reporting import action_events, why_index
from syncd.engine.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Outcome:
    """What one run of :meth:`Executor.execute` did."""

    events: list[DriftEvent] = field(default_factory=list)
    #: events already in the spool (settled with their intent): not to be published again
    spooled: list[DriftEvent] = field(default_factory=list)
    written: set[str] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)
    failed_nodes: set[str] = field(default_factory=set)


class Executor:
    def __init__(self, port: SlurmPort, metrics: Metrics, *, dry_run: bool,
                 wal: WriteAheadLog | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # epoch seconds: when a write was made is its events' time
        self.port = port
        self.metrics = metrics
        self.dry_run = dry_run
        self.wal = wal

    async def execute(self, changes: Sequence[NodeChange], actions: Sequence[Action], *,
                      k8s: KubeView, slurm: SlurmView, actor: str,
                      requested_by: str = "",
                      quiet_failures: frozenset[str] = frozenset()) -> Outcome:
        """Apply ``actions``; a failure of an action whose nodes are all in ``quiet_failures``
        (they failed before and back off) records no second ACTION_FAILED event."""
        why = why_index(changes)
        out = Outcome()
        for action in actions:
            def events(outcome: str, error: str, action: Action = action) -> list[DriftEvent]:
                return action_events(action, outcome=outcome, error=error, why=why, k8s=k8s,
                                     slurm=slurm, actor=actor, requested_by=requested_by)

            key = await self._intend(action, events("ok", ""))
            if key is None:
                outcome, error = "held", "the event spool cannot be written; writes are held"
            else:
                outcome, error = await self._apply(action)
            self.metrics.actions.labels(action.kind.value, outcome).inc(len(action.nodes))
            if outcome == "failed":
                out.failed.append(error)
                out.failed_nodes.update(action.nodes)
            else:
                log.info(f"{action.kind.value} {action.hostlist}", extra={
                    "node": action.hostlist, "action": action.kind.value,
                    "reason": action.reason, "outcome": outcome, "actor": actor,
                    "requested_by": requested_by})
            if outcome == "held":
                out.events.extend(stamped(events(outcome, error), self.clock()))
                continue
            out.written.update(action.nodes)
            done = stamped(events(outcome, error), self.clock())
            if outcome == "failed" and quiet_failures.issuperset(action.nodes):
                done = [e for e in done if e.type is not EventType.ACTION_FAILED]
            if key and self.wal is not None:
                await self._settle(key, done)
                out.spooled.extend(done)
            else:
                out.events.extend(done)
        return out

    async def _intend(self, action: Action, planned: list[DriftEvent]) -> str | None:
        """The intent's key ("" without a log or in dry run); None: hold this write."""
        if self.wal is None or self.dry_run:
            return ""
        if not self.wal.writes_allowed():
            return None
        key = uuid.uuid4().hex
        try:
            await self.wal.intend(key, intent_record(action, planned))
        except SpoolUnavailable:
            # on_spool_failure: continue: keep Slurm right, the events wait in memory
            return None if not self.wal.writes_allowed() else ""
        return key

    async def _settle(self, key: str, done: list[DriftEvent]) -> None:
        assert self.wal is not None
        try:
            await self.wal.settle(key, done)
        except SpoolUnavailable:
            log.warning("action events wait in memory: the spool cannot be written",
                        extra={"intent": key})

    async def _apply(self, action: Action) -> tuple[str, str]:
        if self.dry_run:
            return "dry_run", ""
        try:
            await self.port.apply(action)
        except SlurmError as exc:
            self.metrics.slurm_calls.labels(action.kind.value, "failed").inc()
            log.error("Slurm write failed", extra={
                "action": action.kind.value, "hostlist": action.hostlist, "error": str(exc)})
            return "failed", str(exc)
        self.metrics.slurm_calls.labels(action.kind.value, "ok").inc()
        return "ok", ""
