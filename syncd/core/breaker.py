"""Drain candidates and the blast-radius breaker that admits or withholds them.

The planner proposes a drain (or DOWN) per node; flap damping decides how the reason reads and
how long the node stays out, and the breaker decides, for the whole pass, which candidates go
through: none while the Kubernetes view is stale, none once too much would be drained within
the window (it then latches open until reset).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from syncd.core.events import BreakerData, BreakerState
from syncd.core.memory import BreakerMemory, NodeMemory
from syncd.core.model import ActionKind, DriftEvent, KubeView, NodeChange, SlurmNode
from syncd.core.ownership import make_reason
from syncd.core.policy import Policy


@dataclass(frozen=True, slots=True)
class Candidate:
    change: NodeChange
    gpus: int
    flap_level: int
    flap_until: float


def recent(times: tuple[float, ...], now: float, window: float) -> tuple[float, ...]:
    return tuple(t for t in times if now - t < window)


def drain_candidate(
    name: str, s: SlurmNode, m: NodeMemory, causes: tuple[str, ...], policy: Policy, now: float,
    kind: ActionKind = ActionKind.DRAIN,
) -> Candidate:
    lately = recent(m.drains, now, policy.flap.window)
    cause = causes[0]
    why = "; ".join(causes)
    level = m.flap_level if lately else 0
    flap_until = m.flap_until
    if len(lately) + 1 > policy.flap.max_drains:
        level += 1
        backoff = min(policy.flap.backoff_base * 2 ** (level - 1), policy.flap.backoff_max)
        flap_until = now + backoff
        cause = f"flapping, {cause}"
        why += (f"; drained {len(lately) + 1} times in {policy.flap.window:.0f}s, "
                f"stays drained at least {backoff:.0f}s")
    reason = make_reason(policy, name, cause)
    if kind is ActionKind.DOWN:
        why += "; set DOWN so its jobs requeue now (policy.down_on)"
    change = NodeChange(name, kind, why=why, reason=reason)
    return Candidate(change, s.gres_gpus, level, flap_until)


def decide(
    b: BreakerMemory,
    candidates: list[Candidate],
    k8s: KubeView,
    policy: Policy,
    managed_count: int,
    now: float,
) -> tuple[BreakerMemory, list[Candidate], list[Candidate], list[DriftEvent]]:
    """Decide which drain candidates go through; returns (memory, withheld, admitted, events)."""
    cfg = policy.breaker
    events: list[DriftEvent] = []
    window = tuple(d for d in b.drains if now - d[0] < cfg.window)
    stale = not k8s.synced
    if stale != b.withholding_stale:
        events.append(BreakerData(
            BreakerState.STALE if stale else BreakerState.FRESH,
            "Kubernetes view is not synced; drains withheld" if stale
            else "Kubernetes view is synced again; drains allowed",
            tuple(c.change.node for c in candidates) if stale else ()).event())
    if stale:
        return replace(b, drains=window, withholding_stale=True), candidates, [], events
    b = replace(b, drains=window, withholding_stale=False)
    if not cfg.enabled or not candidates:
        return _admit(b, candidates, now), [], candidates, events

    if b.open and cfg.auto_reset_after > 0 and now - b.opened_at >= cfg.auto_reset_after:
        events.append(BreakerData(
            BreakerState.CLOSED, f"auto reset after {cfg.auto_reset_after:.0f}s").event())
        # Closing by timer keeps the window's drains: the bound still holds across it.
        b = BreakerMemory(drains=b.drains)
    if b.open:
        return b, candidates, [], events

    counted = {n for _, n, _ in window}
    fresh = [c for c in candidates if c.change.node not in counted]
    nodes = len(counted) + len(fresh)
    gpus = sum(g for _, _, g in window) + sum(c.gpus for c in fresh)
    limit = max(math.floor(managed_count * cfg.max_drain_percent / 100.0), cfg.min_nodes)
    if nodes > limit or gpus > cfg.max_drain_gpus:
        why = (f"{nodes} drains ({gpus} GPUs) within {cfg.window:.0f}s would exceed the limit "
               f"of {limit} nodes ({cfg.max_drain_percent:g}% of {managed_count}, at least "
               f"{cfg.min_nodes}) or "
               f"{cfg.max_drain_gpus} GPUs")
        events.append(BreakerData(
            BreakerState.OPEN, why, tuple(sorted(c.change.node for c in candidates))).event())
        return replace(b, open=True, opened_at=now, why=why), candidates, [], events
    return _admit(b, candidates, now), [], candidates, events


def _admit(b: BreakerMemory, admitted: list[Candidate], now: float) -> BreakerMemory:
    """Record admitted drains; a node drained again keeps only its latest time, so it stays
    counted for a full window after its last drain."""
    if not admitted:
        return b
    again = {c.change.node for c in admitted}
    kept = tuple(d for d in b.drains if d[1] not in again)
    return replace(b, drains=kept + tuple((now, c.change.node, c.gpus) for c in admitted))
