"""Builders for planner tests, and a model of how Slurm applies actions.

The model stands in for Slurm only where the pure planner is under test; every adapter is tested
against the real slurmctld.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace

from syncd.core.memory import Memory
from syncd.core.model import (
    Action,
    ActionKind,
    KubeNode,
    KubeView,
    SlurmNode,
    SlurmView,
    Taint,
)
from syncd.core.planner import Plan, plan
from syncd.core.policy import Policy
from syncd.events import validate_event
from syncd.events.envelope import encode, envelope, source_uri

GPU = "nvidia.com/gpu"


def knode(
    name: str,
    *,
    ready: bool = True,
    cordoned: bool = False,
    taints: Iterable[Taint] = (),
    cap: int = 8,
    alloc: int | None = None,
    held: int = 0,
    gone: bool = False,
) -> KubeNode:
    return KubeNode(
        name=name,
        slurm_name=name,
        ready=ready,
        cordoned=cordoned,
        taints=tuple(taints),
        gpu_capacity={GPU: cap},
        gpu_allocatable={GPU: cap if alloc is None else alloc},
        gpu_held={GPU: held},
        gone=gone,
    )


def snode(
    name: str,
    *,
    features: tuple[str, ...] = ("gpu", "gpu_avail_8"),
    flags: Iterable[str] = (),
    reason: str = "",
    gpus: int = 8,
    hold: int = 0,
    **kw: object,
) -> SlurmNode:
    return SlurmNode(
        name=name,
        flags=frozenset(flags),
        reason=reason,
        available_features=features,
        active_features=features,
        gres_gpus=gpus,
        hold_gpus=hold,
        **kw,  # type: ignore[arg-type]
    )


def kview(*nodes: KubeNode, synced: bool = True) -> KubeView:
    return KubeView({n.slurm_name: n for n in nodes}, synced=synced)


def sview(*nodes: SlurmNode, boot: str = "boot-1") -> SlurmView:
    return SlurmView({n.name: n for n in nodes}, boot_time=boot)


def healthy_pair(n: int, prefix: str = "gpu") -> tuple[KubeView, SlurmView]:
    names = [f"{prefix}{i:03d}" for i in range(1, n + 1)]
    return kview(*(knode(x) for x in names)), sview(*(snode(x) for x in names))


def apply_actions(view: SlurmView, actions: Iterable[Action]) -> SlurmView:
    """What slurmctld does with each action (docs/facts/slurm.md §3), on a copy of the view."""
    nodes = dict(view.nodes)
    for a in actions:
        for name in a.nodes:
            s = nodes[name]
            if a.kind is ActionKind.DRAIN:
                s = replace(s, flags=s.flags | {"DRAIN"}, reason=a.reason, reason_user="root")
            elif a.kind is ActionKind.RESUME:
                s = replace(s, flags=s.flags - {"DRAIN"}, reason="", reason_user="")
            elif a.kind is ActionKind.SET_FEATURES:
                s = replace(s, available_features=a.features, active_features=a.features)
            elif a.kind is ActionKind.SET_HOLD:
                s = replace(s, hold_gpus=a.hold_gpus)
            nodes[name] = s
    return replace(view, nodes=nodes)


class Run:
    """Plans repeatedly over time, applying each plan to the Slurm model like the daemon does."""

    def __init__(self, k8s: KubeView, slurm: SlurmView, policy: Policy | None = None) -> None:
        self.k8s = k8s
        self.slurm = slurm
        self.policy = policy or Policy()
        self.memory = Memory()
        self.last: Plan | None = None

    def step(self, now: float, *, apply: bool = True) -> Plan:
        p = plan(self.k8s, self.slurm, self.policy, self.memory, now)
        for e in p.events:  # every event the planner makes is one its schema accepts
            validate_event(json.loads(encode(envelope(
                e, source=source_uri("c", "i"), sequence=1, timestamp=now))))
        self.memory = p.memory
        if apply:
            self.slurm = apply_actions(self.slurm, p.actions)
        self.last = p
        return p

    def set_k8s(self, *nodes: KubeNode) -> None:
        merged = dict(self.k8s.nodes)
        merged.update({n.slurm_name: n for n in nodes})
        self.k8s = replace(self.k8s, nodes=merged)

    def set_slurm(self, *nodes: SlurmNode) -> None:
        merged = dict(self.slurm.nodes)
        merged.update({n.name: n for n in nodes})
        self.slurm = replace(self.slurm, nodes=merged)


def kinds(p: Plan, node: str) -> list[ActionKind]:
    return [c.kind for c in p.changes if c.node == node]
