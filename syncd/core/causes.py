"""Why a Slurm node should be out of service, according to Kubernetes."""

from __future__ import annotations

from dataclasses import dataclass

from syncd.core.memory import NodeMemory
from syncd.core.model import KubeNode
from syncd.core.policy import Policy
from syncd.core.timers import drain_at
from syncd.core.validate import clean_reason_text


@dataclass(frozen=True, slots=True)
class Assessment:
    """``causes`` drain now; ``pending`` means a cause is building up (NotReady, timer running)."""

    causes: tuple[str, ...]
    pending: bool
    not_ready_since: float | None


_NONE = Assessment((), False, None)


def assess(k: KubeNode | None, m: NodeMemory, policy: Policy, now: float) -> Assessment:
    on = policy.causes
    if k is None:
        return Assessment(("no k8s node",), False, None) if on.no_kubernetes_node else _NONE
    if k.gone:
        return Assessment(("k8s node deleted",), False, None) if on.gone else _NONE
    if k.ready and not k.cordoned and not k.taints and not _gpu_lost(k, policy):
        return _NONE

    causes: list[str] = []
    pending = False
    since: float | None = None
    if not k.ready and on.not_ready:
        since = m.not_ready_since if m.not_ready_since is not None else now
        if now >= drain_at(since, policy):
            causes.append("k8s node NotReady")
        else:
            pending = True
    if on.taints:
        for t in k.taints:
            if t.effect == "NoExecute" and t.key in policy.drain_taints:
                causes.append(f"k8s taint {clean_reason_text(t.key)}")
    if k.cordoned and on.cordoned:
        causes.append("k8s node cordoned")
    if on.gpu_loss:
        for res in policy.gpu_resources:
            cap = k.gpu_capacity.get(res.name, 0)
            alloc = k.gpu_allocatable.get(res.name, 0)
            if cap > alloc:
                causes.append(f"k8s GPU loss {clean_reason_text(res.name)} {alloc}/{cap}")
    return Assessment(tuple(causes), pending, since)


def _gpu_lost(k: KubeNode, policy: Policy) -> bool:
    return any(
        k.gpu_capacity.get(r.name, 0) > k.gpu_allocatable.get(r.name, 0)
        for r in policy.gpu_resources
    )
