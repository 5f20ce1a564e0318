"""Carries out a plan's Slurm writes, one batched action at a time, and reports each outcome.

A failed write is logged, counted and reported as an ``action.failed`` event; it never stops
the remaining actions (each is independent), and the planner sees the unchanged Slurm state on
the next read and plans it again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from syncd.core.errors import SlurmError
from syncd.core.model import Action, DriftEvent, KubeView, NodeChange, SlurmView
from syncd.core.ports import SlurmPort
from syncd.core.reporting import action_events, why_index
from syncd.engine.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Outcome:
    """What one run of :meth:`Executor.execute` did."""

    events: list[DriftEvent] = field(default_factory=list)
    written: set[str] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)
    failed_nodes: set[str] = field(default_factory=set)


class Executor:
    def __init__(self, port: SlurmPort, metrics: Metrics, *, dry_run: bool) -> None:
        self.port = port
        self.metrics = metrics
        self.dry_run = dry_run

    async def execute(self, changes: Sequence[NodeChange], actions: Sequence[Action], *,
                      k8s: KubeView, slurm: SlurmView, actor: str,
                      requested_by: str = "") -> Outcome:
        why = why_index(changes)
        out = Outcome()
        for action in actions:
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
            out.written.update(action.nodes)
            out.events.extend(action_events(action, outcome=outcome, error=error, why=why,
                                            k8s=k8s, slurm=slurm, actor=actor,
                                            requested_by=requested_by))
        return out

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
