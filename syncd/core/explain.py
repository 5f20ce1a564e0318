"""Per-node explanations for ``syncd status`` and ``syncd why``, computed from the same inputs
as the planner, so what on-call reads is exactly what the planner would decide."""

from __future__ import annotations

from dataclasses import dataclass

from syncd.core.capacity import owned_feature_pattern, usable_total
from syncd.core.causes import assess
from syncd.core.memory import Memory
from syncd.core.model import KubeNode, KubeView, SlurmView
from syncd.core.ownership import owner_of, owns
from syncd.core.policy import Policy
from syncd.core.snapshots import kube_json, slurm_json
from syncd.core.timers import drain_at, resume_at


@dataclass(frozen=True, slots=True)
class NodeReport:
    name: str
    kubernetes: str
    gpus_allocatable: int
    gpus_held: int
    gpus_usable: int
    slurm: str
    reason: str
    owner: str
    syncd_features: tuple[str, ...]
    causes: tuple[str, ...]
    timers: tuple[str, ...]
    drift: bool
    #: What syncd sees instead of a cause, when it holds back (no Kubernetes counterpart, a
    #: cordon left to slurm-operator, a slurmd pod Pending or terminating...).
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kubernetes": self.kubernetes,
            "gpus": {"allocatable": self.gpus_allocatable, "held": self.gpus_held,
                     "usable": self.gpus_usable},
            "slurm": self.slurm,
            "reason": self.reason,
            "owner": self.owner,
            "syncd_features": list(self.syncd_features),
            "causes": list(self.causes),
            "timers": list(self.timers),
            "drift": self.drift,
            "notes": list(self.notes),
        }


def kube_state(k: KubeNode | None) -> str:
    if k is None:
        return "missing"
    if k.gone:
        return "deleted"
    parts = ["Ready" if k.ready else "NotReady"]
    if k.cordoned:
        parts.append("SchedulingDisabled")
    parts.extend(f"taint:{t.key}:{t.effect}" for t in k.taints if t.effect == "NoExecute")
    return ",".join(parts)


def report(
    name: str, k8s: KubeView, slurm: SlurmView, policy: Policy, memory: Memory, now: float
) -> NodeReport:
    k = k8s.nodes.get(name)
    s = slurm.nodes.get(name)
    m = memory.node(name)
    a = assess(k, m, policy, now)
    timers: list[str] = []
    if a.not_ready_since is not None and not a.causes:
        left = drain_at(a.not_ready_since, policy) - now
        timers.append(f"NotReady for {now - a.not_ready_since:.0f}s; drains in {left:.0f}s")
    if s is not None and owns(policy, s, m) and not m.manual and not a.causes and not a.held:
        since = m.clear_since if m.clear_since is not None else now
        ready_at = resume_at(since, m, policy)
        timers.append(f"causes clear for {now - since:.0f}s; resumes in "
                      f"{max(0.0, ready_at - now):.0f}s")
    if a.gone_since is not None and not a.causes:
        left = a.gone_since + policy.down_on.deleted.grace - now
        timers.append(f"Node object deleted {now - a.gone_since:.0f}s ago; DOWN in {left:.0f}s "
                      "unless it is re-created")
    if a.condition_since is not None and not a.causes:
        left = drain_at(a.condition_since, policy) - now
        timers.append(f"a listed node condition for {now - a.condition_since:.0f}s; drains in "
                      f"{left:.0f}s")
    if a.down and a.causes:
        timers.append("the machine is gone: syncd sets the node DOWN (policy.down_on), so "
                      "slurmctld requeues its jobs now")
    if m.flap_until > now:
        timers.append(f"flapping (level {m.flap_level}); held at least "
                      f"{m.flap_until - now:.0f}s more")
    notes = _notes(name, k8s, k, a.held)
    owned = owned_feature_pattern(policy, memory.feature_templates)
    alloc = held = usable = 0
    if k is not None:
        for r in policy.gpu_resources:
            alloc += k.gpu_allocatable.get(r.name, 0)
            held += k.gpu_held.get(r.name, 0)
        usable = usable_total(k, policy)
    return NodeReport(
        name=name,
        kubernetes=kube_state(k),
        gpus_allocatable=alloc,
        gpus_held=held,
        gpus_usable=usable,
        slurm=s.state_text if s is not None else "missing",
        reason=s.reason if s is not None else "",
        owner=owner_of(policy, s, m) if s is not None else "",
        syncd_features=tuple(f for f in (s.available_features if s else ())
                             if owned.fullmatch(f)),
        causes=a.causes,
        timers=tuple(timers),
        drift=bool(m.drift_key),
        notes=notes,
    )


def _notes(name: str, k8s: KubeView, k: KubeNode | None, held: str) -> tuple[str, ...]:
    out = [held] if held else []
    if k is None and k8s.mapping:
        out.append(f"name mapping: {k8s.mapping}")
    if name in k8s.notes:
        out.append(k8s.notes[name])
    if name in k8s.contested:
        out.append("several Kubernetes nodes claim this Slurm name: syncd drives it in "
                   "neither direction")
    if k is not None and k.shares_node_with:
        out.append(f"shares Kubernetes node {k.name} with {', '.join(k.shares_node_with)}: "
                   "its GPUs cannot be attributed, so syncd writes no capacity here")
    return tuple(out)


def detail(name: str, k8s: KubeView, slurm: SlurmView) -> dict[str, object]:
    """Both raw snapshots, for ``syncd why --output json``."""
    return {"kubernetes": kube_json(k8s.nodes.get(name)),
            "slurm": slurm_json(slurm.nodes.get(name))}
