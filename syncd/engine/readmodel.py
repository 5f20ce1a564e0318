"""What the runbook API and ``/readyz`` read: the watcher's current view, the last Slurm read,
the planner's memory and the history. Nothing here reads Slurm or takes the reconcile lock,
so a busy ``syncd status --watch`` never slows a pass nor sees a half-finished one.

``status``, ``plan`` and ``why`` are computed from the same three inputs by the same pure
functions, so they always agree on what differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from syncd.core.explain import detail, report
from syncd.core.memory import Memory
from syncd.core.model import KubeView, SlurmView
from syncd.core.planner import Plan, plan
from syncd.core.policy import Policy
from syncd.core.ports import KubeSource
from syncd.engine.clock import LoopClock
from syncd.engine.history import History
from syncd.engine.shared import Shared
from syncd.engine.slurm_reader import SlurmReader


@dataclass(frozen=True, slots=True)
class Inputs:
    k8s: KubeView
    slurm: SlurmView
    memory: Memory
    now: float
    slurm_age: float


class ReadModel:
    def __init__(self, *, kube: KubeSource, reader: SlurmReader, shared: Shared,
                 policy: Policy, history: History, clock: LoopClock,
                 is_leader: Callable[[], bool], dry_run: bool) -> None:
        self.kube = kube
        self.reader = reader
        self.shared = shared
        self.policy = policy
        self.history = history
        self.clock = clock
        self.is_leader = is_leader
        self.dry_run = dry_run

    @property
    def role(self) -> str:
        return "leader" if self.is_leader() else "standby"

    def inputs(self) -> Inputs | None:
        """None until Slurm has been read once (or while it is unreachable)."""
        slurm = self.reader.last
        if not slurm.ok or not self.reader.health.ok:
            return None
        return Inputs(self.kube.view(), slurm, self.shared.memory, self.clock.now(),
                      self.reader.full_read_age())

    def slurm_error(self) -> str:
        h = self.reader.health
        return h.error or ("Slurm not read yet" if not h.ok else "")

    def preview(self, i: Inputs) -> Plan:
        """What the planner would do now, without writing or remembering anything."""
        return plan(i.k8s, i.slurm, self.policy, i.memory, i.now)

    def status(self, i: Inputs) -> dict[str, Any]:
        p = self.preview(i)
        pending = {c.node for c in (*p.changes, *p.withheld)}
        names = sorted(set(i.slurm.nodes) | set(i.k8s.nodes))
        rows = []
        for n in names:
            row = report(n, i.k8s, i.slurm, self.policy, i.memory, i.now).to_json()
            row["drift"] = bool(row["drift"]) or n in pending
            rows.append(row)
        b = i.memory.breaker
        summary = {
            "nodes": len(names),
            "drifted": sum(1 for r in rows if r["drift"]),
            "drained_by_syncd": sum(1 for r in rows if str(r["owner"]).startswith("syncd")),
            "drained_by_others": sum(1 for r in rows
                                     if r["owner"] and not str(r["owner"]).startswith("syncd")),
            "gpus_usable": sum(_usable(r) for r in rows),
            "kubernetes_synced": i.k8s.synced,
            "breaker": "open" if b.open else "closed",
            "role": self.role,
            "dry_run": self.dry_run,
            "slurm_backend": self.reader.port.backend,
            "slurm_version": self.reader.port.slurm_version,
            "slurm_read_age": round(i.slurm_age, 1),
            "problems": list(i.k8s.problems)[:20],
        }
        return {"summary": summary, "nodes": rows, "time": i.now}

    def plan_json(self, i: Inputs) -> dict[str, Any]:
        p = self.preview(i)
        return {
            "changes": [{"node": c.node, "action": c.kind.value, "why": c.why,
                         "reason": c.reason, "features": list(c.features),
                         "hold_gpus": c.hold_gpus} for c in p.changes],
            "withheld": [{"node": c.node, "action": c.kind.value, "why": c.why}
                         for c in p.withheld],
            "slurm_calls": [{"action": a.kind.value, "hostlist": a.hostlist,
                             "nodes": len(a.nodes)} for a in p.actions],
            "breaker": {"open": p.memory.breaker.open, "why": p.memory.breaker.why},
            "dry_run": self.dry_run,
            "role": self.role,
        }

    def why(self, i: Inputs, node: str) -> dict[str, Any] | None:
        if node not in i.slurm.nodes and node not in i.k8s.nodes:
            return None
        p = self.preview(i)
        return {
            "report": report(node, i.k8s, i.slurm, self.policy, i.memory, i.now).to_json(),
            "memory": i.memory.node(node).to_json(),
            "planned": [{"action": c.kind.value, "why": c.why} for c in p.changes
                        if c.node == node],
            "withheld": [{"action": c.kind.value, "why": c.why} for c in p.withheld
                         if c.node == node],
            "history": [{"time": t, "text": text} for t, text in self.history.of(node)],
            **detail(node, i.k8s, i.slurm),
        }

    def breaker(self) -> dict[str, Any]:
        b = self.shared.memory.breaker
        now = self.clock.now()
        cfg = self.policy.breaker
        recent = [{"node": n, "gpus": g, "age": round(now - t)} for t, n, g in b.drains
                  if now - t < cfg.window]
        return {"open": b.open, "why": b.why, "opened_at": b.opened_at or None,
                "withholding_stale": b.withholding_stale, "recent_drains": recent,
                "limits": {"max_drain_percent": cfg.max_drain_percent,
                           "max_drain_gpus": cfg.max_drain_gpus, "window": cfg.window}}


def _usable(row: dict[str, object]) -> int:
    gpus = row["gpus"]
    return int(gpus["usable"]) if isinstance(gpus, dict) else 0
