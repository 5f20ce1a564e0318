"""Slurm -> Kubernetes: which Kubernetes nodes should say that Slurm has them out of service.

The opt-in mirror (``policy.mirror``) is syncd's other direction. A managed node that Slurm holds
out of service by someone other than syncd (an operator's drain, NHC, slurmctld's own DOWN or
NOT_RESPONDING) gets syncd's Node condition, and optionally its ``NoSchedule`` taint, so the
Kubernetes scheduler stops placing pods there and Kubernetes users can see why. syncd's own
drains are not mirrored: their cause is already in Kubernetes.

No loops: the condition type and the taint key are syncd's alone (config validation keeps them
out of ``policy.conditions`` and ``policy.drain_taints``, so they are never a cause), and a
change is returned only where what the Kubernetes node shows differs from what Slurm says, so a
mark once written is a fixed point. Pure like the planner: the engine writes what this returns.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from syncd.core.memory import Memory, NodeMemory
from syncd.core.model import (
    BaseState,
    KubeNode,
    KubeView,
    NodeCondition,
    SlurmNode,
    SlurmView,
    Taint,
)
from syncd.core.ownership import base_reason, owner_of, owns
from syncd.core.policy import Policy
from syncd.core.validate import MAX_REASON, clean_reason_text

#: Condition messages are free text on the Node object; bounded (as Slurm reasons are), so a
#: long reason cannot bloat every Node update the watchers of the cluster receive.
MAX_MESSAGE = MAX_REASON
AVAILABLE = ("False", "SlurmAvailable", "Slurm schedules jobs on this node again")
TAINT_EFFECT = "NoSchedule"


@dataclass(frozen=True, slots=True)
class MirrorChange:
    """What to write on one Kubernetes node: the condition (None: it is right already) and the
    taint (True: add it, False: remove it, None: it is right already)."""

    node: str
    kube_node: str
    unavailable: bool
    condition: NodeCondition | None
    taint: bool | None
    why: str

    @property
    def key(self) -> tuple[NodeCondition | None, bool | None]:
        """Two changes with the same key write the same thing."""
        return (self.condition, self.taint)


@dataclass(frozen=True, slots=True)
class MirrorPlan:
    """``unavailable`` counts the managed nodes the mirror marks out of service in Slurm;
    ``unresponsive`` is when each node only NOT_RESPONDING was first seen so (pass it to the
    next call)."""

    changes: tuple[MirrorChange, ...]
    unavailable: int
    unresponsive: Mapping[str, float] = field(default_factory=dict)


def mirror_taint(policy: Policy) -> Taint:
    return Taint(key=policy.mirror.taint_key, effect=TAINT_EFFECT)


def _word(s: SlurmNode) -> str:
    """A CamelCase reason for the condition, from how Slurm holds the node out."""
    if s.state is BaseState.DOWN:
        return "SlurmDown"
    if "FAIL" in s.flags:
        return "SlurmFail"
    if s.drained:
        return "SlurmDrain"
    if s.state is BaseState.FUTURE:
        return "SlurmFuture"
    return "SlurmNotResponding"


def only_unresponsive(s: SlurmNode) -> bool:
    """Out of service only because slurmctld has not heard from slurmd: not DOWN (yet), not
    drained, no FAIL. Every resumed node is so for about a second (docs/runbook.md)."""
    return (s.not_responding and not s.drained and "FAIL" not in s.flags
            and s.state not in (BaseState.DOWN, BaseState.FUTURE))


def target(s: SlurmNode | None, m: NodeMemory, policy: Policy,
           unresponsive_for: float = float("inf")) -> tuple[str, str, str] | None:
    """(status, reason, message) of the condition while Slurm holds the node out of service
    by someone other than syncd; None while it does not (or it is syncd's own drain, or it
    has been only unresponsive for less than ``policy.mirror.not_responding_after``)."""
    if s is None or not s.unavailable or owns(policy, s, m):
        return None
    if only_unresponsive(s) and unresponsive_for < policy.mirror.not_responding_after:
        return None
    owner = owner_of(policy, s, m)
    # An owner already saying "(no reason text)" needs no "no reason given" after it.
    text = base_reason(s.reason) or ("" if owner.endswith("(no reason text)")
                                     else "no reason given")
    message = clean_reason_text(f"{owner}: {text}" if text else owner, limit=MAX_MESSAGE)
    return ("True", _word(s), message)


@lru_cache(maxsize=8)
def _managed(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def mirror_plan(k8s: KubeView, slurm: SlurmView, memory: Memory, policy: Policy, *,
                now: float = 0.0, unresponsive: Mapping[str, float] | None = None,
                skip: Collection[str] = ()) -> MirrorPlan:
    """The mirror changes for every managed node with a live Kubernetes node.

    ``now`` and ``unresponsive`` (the previous plan's) time how long a node has been only
    NOT_RESPONDING. ``skip``: nodes syncd itself just wrote to in Slurm, whose state in
    ``slurm`` is already old (they are read back shortly and decided then). Nothing is decided
    on a view that is not synced, or without a Slurm view: what the nodes carry is unknown.
    """
    if not policy.mirror.enabled or not k8s.synced or not slurm.ok:
        return MirrorPlan((), 0, dict(unresponsive or {}))
    managed = _managed(policy.managed_nodes)
    want_taint = policy.mirror.taint
    changes: list[MirrorChange] = []
    unavailable = 0
    seen = unresponsive or {}
    since: dict[str, float] = {}
    for name, k in k8s.nodes.items():
        if k.gone or managed.fullmatch(name) is None:
            continue
        s = slurm.nodes.get(name)
        if s is not None and not s.unavailable and k.mirror is None and not k.mirror_taint:
            continue  # the common case, decided without looking further
        waited = float("inf")
        if s is not None and only_unresponsive(s):
            since[name] = seen.get(name, now)
            waited = now - since[name]
        want = target(s, memory.node(name), policy, waited)
        if want is not None:
            unavailable += 1
        if name in skip:
            continue
        change = _change(name, k, s, want, policy, want_taint)
        if change is not None:
            changes.append(change)
    return MirrorPlan(tuple(sorted(changes, key=lambda c: c.node)), unavailable, since)


def _change(name: str, k: KubeNode, s: SlurmNode | None, want: tuple[str, str, str] | None,
            policy: Policy, want_taint: bool) -> MirrorChange | None:
    condition: NodeCondition | None = None
    if want is not None and k.mirror != want:
        condition = NodeCondition(policy.mirror.condition, *want,
                                  transition=k.mirror is None or k.mirror[0] != want[0])
    elif want is None and k.mirror is not None and k.mirror != AVAILABLE:
        condition = NodeCondition(policy.mirror.condition, *AVAILABLE,
                                  transition=k.mirror[0] != AVAILABLE[0])
    taint_wanted = want is not None and want_taint
    taint = None if k.mirror_taint == taint_wanted else taint_wanted
    if condition is None and taint is None:
        return None
    return MirrorChange(name, k.name, want is not None, condition, taint, _why(s, want))


def _why(s: SlurmNode | None, want: tuple[str, str, str] | None) -> str:
    if s is None:
        return "Slurm no longer lists the node"
    if want is not None:
        return f"Slurm has the node out of service ({s.state_text}), {want[2]}"
    if not s.unavailable:
        return "Slurm schedules on the node again"
    if only_unresponsive(s):
        return ("slurmd has not answered for less than policy.mirror.not_responding_after "
                f"({s.state_text})")
    return "the node is out of service by syncd's own drain, whose cause is in Kubernetes"
