"""The small per-node history the planner's timers need, passed in and returned updated.

The planner is a pure function, so anything it must remember between two reconciles
(when a node went NotReady, which reason syncd wrote, how often a node flapped, whether the
breaker is open) lives here. The daemon keeps the latest value and persists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from syncd.core.model import KubeNode, SlurmNode

_NO_NODES: Mapping[str, NodeMemory] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class NodeMemory:
    """Timers and ledger for one Slurm node.

    ``ledger_reason`` is the exact reason text syncd last wrote when draining the node; a live
    reason that differs from it (an operator edited it, or someone else drained) is not syncd's.
    ``manual`` marks a drain made with ``syncd drain``: only ``syncd resume`` lifts it.
    ``drains`` are the times syncd *observed* a node become drained by it; flap damping counts
    those, so a dry run or a failed write never makes a node look like it flaps.
    ``released`` is the reason text of syncd's drain that it last lifted: Slurm 24.11 and 25.11
    keep a reason after ``State=RESUME`` (docs/slurm-releases.md), so a later drain by someone
    else can carry it; that text is not syncd's again until syncd drains with it once more.
    """

    not_ready_since: float | None = None
    clear_since: float | None = None
    ledger_reason: str = ""
    manual: bool = False
    drained_seen: bool = False
    drains: tuple[float, ...] = ()
    flap_level: int = 0
    flap_until: float = 0.0
    drift_key: str = ""
    write_failures: int = 0
    retry_at: float = 0.0
    released: str = ""
    gone_since: float | None = None
    condition_since: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "not_ready_since": self.not_ready_since,
            "clear_since": self.clear_since,
            "ledger_reason": self.ledger_reason,
            "manual": self.manual,
            "drained_seen": self.drained_seen,
            "drains": list(self.drains),
            "flap_level": self.flap_level,
            "flap_until": self.flap_until,
            "drift_key": self.drift_key,
            "write_failures": self.write_failures,
            "retry_at": self.retry_at,
            "released": self.released,
            "gone_since": self.gone_since,
            "condition_since": self.condition_since,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> NodeMemory:
        return cls(
            not_ready_since=_opt_float(raw.get("not_ready_since")),
            clear_since=_opt_float(raw.get("clear_since")),
            ledger_reason=str(raw.get("ledger_reason", "")),
            manual=bool(raw.get("manual", False)),
            drained_seen=bool(raw.get("drained_seen", False)),
            drains=tuple(float(t) for t in raw.get("drains", ())),
            flap_level=int(raw.get("flap_level", 0)),
            flap_until=float(raw.get("flap_until", 0.0)),
            drift_key=str(raw.get("drift_key", "")),
            write_failures=int(raw.get("write_failures", 0)),
            retry_at=float(raw.get("retry_at", 0.0)),
            released=str(raw.get("released", "")),
            gone_since=_opt_float(raw.get("gone_since")),
            condition_since=_opt_float(raw.get("condition_since")),
        )


EMPTY_NODE = NodeMemory()


@dataclass(frozen=True, slots=True)
class BreakerMemory:
    """``drains`` holds (time, node, gpus) of every automatic drain inside the breaker window."""

    open: bool = False
    opened_at: float = 0.0
    why: str = ""
    drains: tuple[tuple[float, str, int], ...] = ()
    withholding_stale: bool = False


@dataclass(frozen=True, slots=True)
class Memory:
    """``settled`` caches, per node, the (Kubernetes, Slurm) snapshots of the last plan that
    left the node with nothing to do and no timer running. Equal snapshots again mean the same
    decision, so the planner skips the node: that is what keeps a no-change plan cheap at
    10,000 nodes. The ports promise equal objects for unchanged nodes and reuse the same object
    where they can (syncd/core/ports.py), so the check is mostly an identity test. It is a
    cache, never persisted, and tied to the policy object it was computed with.
    """

    nodes: Mapping[str, NodeMemory] = field(default_factory=lambda: _NO_NODES)
    breaker: BreakerMemory = field(default_factory=BreakerMemory)
    slurm_boot_time: str = ""
    #: Every feature template syncd has written with, so features an earlier template made
    #: are still recognised as syncd's (and replaced) after the template changes.
    feature_templates: tuple[str, ...] = ()
    settled: Mapping[str, tuple[KubeNode | None, SlurmNode]] = field(default_factory=dict)
    settled_policy: object = None
    #: What an incremental plan needs besides ``settled`` (None until a full plan made it):
    #: the Slurm names the last plan left unsettled (timers, pending writes, contested
    #: names), which every plan looks at again; how many Slurm nodes it planned over and how
    #: many of them are managed; how many nodes are drifted. Caches too, never persisted.
    watch: frozenset[str] | None = None
    planned_size: int = -1
    managed_count: int = 0
    drifted: int = 0

    def node(self, name: str) -> NodeMemory:
        return self.nodes.get(name, EMPTY_NODE)

    def to_json(self) -> dict[str, Any]:
        b = self.breaker
        return {
            "version": 1,
            "nodes": {n: m.to_json() for n, m in self.nodes.items() if m != EMPTY_NODE},
            "breaker": {
                "open": b.open,
                "opened_at": b.opened_at,
                "why": b.why,
                "drains": [list(d) for d in b.drains],
                "withholding_stale": b.withholding_stale,
            },
            "slurm_boot_time": self.slurm_boot_time,
            "feature_templates": list(self.feature_templates),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Memory:
        b = raw.get("breaker", {})
        return cls(
            nodes={n: NodeMemory.from_json(m) for n, m in raw.get("nodes", {}).items()},
            breaker=BreakerMemory(
                open=bool(b.get("open", False)),
                opened_at=float(b.get("opened_at", 0.0)),
                why=str(b.get("why", "")),
                drains=tuple((float(t), str(n), int(g)) for t, n, g in b.get("drains", ())),
                withholding_stale=bool(b.get("withholding_stale", False)),
            ),
            slurm_boot_time=str(raw.get("slurm_boot_time", "")),
            feature_templates=tuple(str(t) for t in raw.get("feature_templates", ())),
        )


def reset_breaker(memory: Memory) -> Memory:
    """What ``syncd breaker reset`` does: close the breaker and forget the window's drains."""
    return replace(memory, breaker=BreakerMemory())


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
