"""The reconcile decision: (Kubernetes view, Slurm view, policy, memory, now) -> Plan.

It classifies each Slurm node, decides its changes, lets the breaker withhold drains, and
groups identical changes into hostlist batches (slurm-gcp's classify/group/act shape). It does
no I/O and reads no clock; ``now`` is seconds since the epoch, given by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from functools import lru_cache

from syncd.core.batching import batch
from syncd.core.breaker import Candidate, drain_candidate, recent
from syncd.core.breaker import decide as decide_breaker
from syncd.core.capacity import (
    desired_features,
    desired_hold,
    owned_feature_pattern,
    refused_gpu_count,
    templates,
)
from syncd.core.causes import assess
from syncd.core.events import DriftData
from syncd.core.memory import EMPTY_NODE, Memory, NodeMemory
from syncd.core.model import (
    Action,
    ActionKind,
    BaseState,
    DriftEvent,
    KubeNode,
    KubeView,
    NodeChange,
    SlurmNode,
    SlurmView,
)
from syncd.core.ownership import base_reason, owns, slurmctld_unresponsive
from syncd.core.planscope import select
from syncd.core.policy import Policy
from syncd.core.timers import resume_at


@dataclass(frozen=True, slots=True)
class Plan:
    """``changes`` will be written; ``withheld`` are drains the breaker held back."""

    changes: tuple[NodeChange, ...]
    withheld: tuple[NodeChange, ...]
    actions: tuple[Action, ...]
    events: tuple[DriftEvent, ...]
    memory: Memory

    @property
    def empty(self) -> bool:
        return not self.changes and not self.events and not self.withheld


@lru_cache(maxsize=8)
def _managed(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def plan(
    k8s: KubeView, slurm: SlurmView, policy: Policy, memory: Memory, now: float,
    *, only: Collection[str] | None = None,
) -> Plan:
    """The plan for every node, or the same plan from only the nodes in ``only`` and those
    the last plan left unsettled (syncd.core.planscope: ``only`` promises that no other
    node's snapshots changed since the plan that made ``memory``)."""
    if not slurm.ok:
        # Without a Slurm view nothing can be compared; an empty plan keeps the memory as is.
        return Plan((), (), (), (), memory)

    managed = _managed(policy.managed_nodes)
    owned = owned_feature_pattern(policy, memory.feature_templates)
    changes: list[NodeChange] = []
    candidates: list[Candidate] = []
    events: list[DriftEvent] = []
    new_nodes: dict[str, NodeMemory] = dict(memory.nodes)
    restarted = bool(memory.slurm_boot_time) and slurm.boot_time != memory.slurm_boot_time
    if restarted and slurm.boot_time:
        events.append(DriftData(
            None, None, ("slurmctld_restarted",),
            "slurmctld restarted; features it reset are re-asserted",
            boot_time=slurm.boot_time).event())
    sel = select(k8s, slurm, memory, policy, managed, only=only, restarted=restarted)
    settled, looked, managed_count, cache = sel.settled, sel.looked, sel.managed_count, sel.cache
    watch: set[str] = set()

    for name, s in sel.slurm_items:
        if managed.fullmatch(name) is None:
            continue
        if name in k8s.contested:
            watch.add(name)  # looked at every pass: its claimants may change
            m = memory.nodes.get(name, EMPTY_NODE)
            if m.drift_key != "name_collision":
                events.append(_drift_event(name, None, s, ["name_collision"]))
                new_nodes[name] = replace(m, drift_key="name_collision", not_ready_since=None,
                                          clear_since=None)
            continue
        k = k8s.nodes.get(name)
        hit = cache.get(name)
        # The port contract (syncd/core/ports.py): an unchanged node reads as an equal object,
        # usually the same one, so identity answers first and equality only when it must.
        if hit is not None and (hit[0] is k or hit[0] == k) and (hit[1] is s or hit[1] == s):
            settled[name] = hit
            continue
        m = memory.nodes.get(name, EMPTY_NODE)
        m2, node_changes, cand, drift = _node(name, k, s, m, policy, owned, now)
        if node_changes:
            changes.extend(node_changes)
        if cand is not None:
            candidates.append(cand)
        drift_key = "|".join(drift)
        if drift_key != m2.drift_key:
            events.append(_drift_event(name, k, s, drift))
            m2 = replace(m2, drift_key=drift_key)
        if m2 is not m:
            new_nodes[name] = m2
        if not node_changes and cand is None and _idle(m2, now):
            settled[name] = (k, s)
        else:
            watch.add(name)

    for name, k in sel.kube_items:
        m = memory.nodes.get(name, EMPTY_NODE)
        drift_key = "no_slurm_node"
        if m.drift_key != drift_key:
            events.append(_drift_event(name, k, None, [drift_key]))
            new_nodes[name] = replace(m, drift_key=drift_key)

    breaker, withheld, admitted, breaker_events = decide_breaker(
        memory.breaker, candidates, k8s, policy, managed_count, now
    )
    events.extend(breaker_events)
    for cand in admitted:
        changes.append(cand.change)
        node = cand.change.node
        new_nodes[node] = replace(
            new_nodes.get(node, EMPTY_NODE),
            ledger_reason=cand.change.reason,
            released="",
            manual=False,
            flap_level=cand.flap_level,
            flap_until=cand.flap_until,
        )

    if sel.incremental:
        # The drift count moves only with the nodes this plan changed.
        drifted = memory.drifted + sum(
            bool(new_nodes[n].drift_key) - bool(memory.node(n).drift_key)
            for n in new_nodes.keys() & looked)
    else:
        drifted = sum(1 for m in new_nodes.values() if m.drift_key)
    ordered = sorted(changes, key=lambda c: (_ORDER[c.kind], c.node))
    return Plan(
        changes=tuple(ordered),
        withheld=tuple(c.change for c in withheld),
        actions=tuple(batch(ordered, policy.batch_size)),
        events=tuple(events),
        memory=Memory(nodes=new_nodes, breaker=breaker, slurm_boot_time=slurm.boot_time,
                      feature_templates=templates(policy, memory.feature_templates),
                      settled=settled, settled_policy=policy, watch=frozenset(watch),
                      planned_size=len(slurm.nodes), managed_count=managed_count,
                      drifted=drifted),
    )


# Drains first (safety), resumes last (so a node comes back with its features already right).
_ORDER = {ActionKind.DOWN: 0, ActionKind.DRAIN: 0, ActionKind.SET_HOLD: 1,
          ActionKind.SET_FEATURES: 2, ActionKind.RESUME: 3}


def _node(
    name: str,
    k: KubeNode | None,
    s: SlurmNode,
    m: NodeMemory,
    policy: Policy,
    owned: re.Pattern[str],
    now: float,
) -> tuple[NodeMemory, list[NodeChange], Candidate | None, list[str]]:
    changes: list[NodeChange] = []
    drift: list[str] = []
    if k is not None and not k.gone and refused_gpu_count(k, s, policy):
        # Unbelievable GPU counts are refused as input: no capacity from them, and no "GPU
        # loss" cause either (1e9 capacity against 8 allocatable is not a lost GPU).
        drift.append("gpu_count_refused")
        k = replace(k, gpu_capacity={}, gpu_allocatable={}, gpu_held={})
        refused = True
    else:
        refused = False
    a = assess(k, m, policy, now)
    cand: Candidate | None = None
    ours = owns(policy, s, m)

    drains = m.drains
    # An observed transition into "drained by syncd" is what counts towards flapping, so a
    # dry run or a failed write never makes a node look like it flaps.
    seen_drained = ours
    if seen_drained and not m.drained_seen:
        drains = (*recent(m.drains, now, policy.flap.window), now)
    m2 = m
    if (
        a.not_ready_since != m.not_ready_since
        or a.gone_since != m.gone_since
        or a.condition_since != m.condition_since
        or drains is not m.drains
        or seen_drained != m.drained_seen
    ):
        m2 = replace(m, not_ready_since=a.not_ready_since, gone_since=a.gone_since,
                     condition_since=a.condition_since, drains=drains,
                     drained_seen=seen_drained)

    if k is not None and not k.gone and not refused and not k.shares_node_with:
        if policy.capacity.features:
            feats = desired_features(k, s, policy, owned)
            if feats is not None:
                changes.append(NodeChange(name, ActionKind.SET_FEATURES,
                                          why=_capacity_why(k, policy), features=feats))
                drift.append("capacity")
        if policy.capacity.hold_jobs:
            hold = desired_hold(k, s, policy)
            if hold is not None:
                changes.append(NodeChange(
                    name, ActionKind.SET_HOLD, hold_gpus=hold,
                    why=f"Kubernetes pods hold GPUs Slurm counts as free; holding {hold}"))
                drift.append("hold")

    if a.causes:
        if m2.clear_since is not None:
            m2 = replace(m2, clear_since=None)
        kind = ActionKind.DOWN if a.down else ActionKind.DRAIN
        if not s.unavailable:
            drift.append("schedulable")
            cand = drain_candidate(name, s, m2, a.causes, policy, now, kind)
        elif slurmctld_unresponsive(s):
            # Unschedulable only until its slurmd answers again; drained now, it comes back
            # drained instead of open to jobs while Kubernetes still says no.
            drift.append("unresponsive")
            cand = drain_candidate(name, s, m2, a.causes, policy, now, kind)
        elif a.down and ours and s.state is not BaseState.DOWN:
            # syncd's own drain, and now the machine is gone for good: DOWN, so slurmctld
            # fails and requeues the jobs still "running" there at once.
            drift.append("not_down")
            cand = drain_candidate(name, s, m2, a.causes, policy, now, kind)
        # Any other unavailable node that is not ours (an operator's drain or DOWN, FAIL) is
        # left exactly as it is: draining it would overwrite someone else's reason.
    elif ours and not m2.manual and not a.held:
        clear_since = m2.clear_since if m2.clear_since is not None else now
        if a.pending:
            clear_since = now
        if clear_since != m2.clear_since:
            m2 = replace(m2, clear_since=clear_since)
        ready_at = resume_at(clear_since, m2, policy)
        # Ours and DOWN: it went silent while drained, and slurmctld kept our reason, so its
        # ReturnToService will not bring it back; RESUME does (to IDLE) once slurmd answers.
        if now >= ready_at and not a.pending and not s.not_responding:
            waited = now - clear_since
            changes.append(NodeChange(name, ActionKind.RESUME, why=(
                f"every drain cause has been gone for {waited:.0f}s "
                f"(resume_after {policy.resume_after:.0f}s)")))
            m2 = replace(m2, clear_since=None, ledger_reason="", released=base_reason(s.reason))
    elif m2.clear_since is not None:
        m2 = replace(m2, clear_since=None)
    if m2.retry_at > now and (changes or cand is not None):
        # The last write to this node failed: wait out its back-off (a refused transition
        # retried every pass would hammer slurmctld and flood the event stream).
        drift.append("write_backoff")
        return m2, [], None, drift
    return m2, changes, cand, drift


def _idle(m: NodeMemory, now: float) -> bool:
    """No timer of the node's is running, so equal inputs mean the same (empty) decision."""
    return (m.not_ready_since is None and m.clear_since is None and m.gone_since is None
            and m.condition_since is None and m.retry_at <= now)


def _capacity_why(k: KubeNode, policy: Policy) -> str:
    parts = []
    for res in policy.gpu_resources:
        if res.name in k.gpu_allocatable or res.name in k.gpu_capacity:
            alloc = k.gpu_allocatable.get(res.name, 0)
            held = k.gpu_held.get(res.name, 0)
            parts.append(f"{res.name}: allocatable {alloc} - held by pods {held} "
                         f"= usable {max(0, alloc - held)}")
    return "; ".join(parts) or "no GPU resources on the Kubernetes node"


def _drift_event(
    name: str, k: KubeNode | None, s: SlurmNode | None, drift: list[str]
) -> DriftEvent:
    return DriftData(k, s, tuple(drift),
                     ", ".join(drift) if drift else "resolved: Slurm agrees with Kubernetes",
                     ).event(name)
