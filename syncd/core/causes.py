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
    """``causes`` drain now (``down``: set the node DOWN instead, ``policy.down_on``);
    ``pending`` means a cause is building up (a timer is running); ``held`` says why syncd
    neither drains nor resumes the node although no cause holds (it has nothing to go by)."""

    causes: tuple[str, ...]
    pending: bool
    not_ready_since: float | None
    down: bool = False
    gone_since: float | None = None
    condition_since: float | None = None
    held: str = ""


_NONE = Assessment((), False, None)
#: With ``causes.no_kubernetes_node`` off, a Slurm node nothing maps to is left as it is: the
#: watcher may simply not have seen its slurmd pod yet (a NodeSet scaling up), so a drain of
#: syncd's own stays until Kubernetes says the node is fine again.
_ABSENT = Assessment((), False, None, held="nothing in Kubernetes maps to this Slurm node: "
                     "syncd leaves it as it is (policy.causes.no_kubernetes_node is off)")
_CORDON_HELD = ("cordoned, and the cordon is slurm-operator's (policy.cordon): syncd neither "
                "drains nor resumes for it")


def _since(kept: float | None, now: float) -> float:
    return kept if kept is not None else now


def _gone(m: NodeMemory, policy: Policy, now: float) -> Assessment:
    rule = policy.down_on.deleted
    if not rule.enabled:
        return Assessment(("k8s node deleted",), False, None)
    # A Node deleted and re-created within the grace (a kubelet re-registering) must never
    # take the Slurm node down, so nothing happens until the grace has passed.
    since = _since(m.gone_since, now)
    if now >= since + rule.grace:
        return Assessment(("k8s node deleted",), False, None, down=True, gone_since=since)
    return Assessment((), True, None, gone_since=since)


def _conditions(k: KubeNode, m: NodeMemory, policy: Policy,
                now: float) -> tuple[list[str], bool, float | None]:
    """(causes, pending, since) from the node conditions the policy lists."""
    hits = [(c, text) for c in policy.conditions for t, st, text in k.conditions
            if t == c.type and st == c.status]
    if not hits:
        return [], False, None
    since = _since(m.condition_since, now)
    if now < drain_at(since, policy):
        return [], True, since
    return [f"k8s condition {c.words()}" + (f" {text[:40]}" if text else "")
            for c, text in hits], False, since


def assess(k: KubeNode | None, m: NodeMemory, policy: Policy, now: float) -> Assessment:
    on = policy.causes
    if k is None:
        return Assessment(("no k8s node",), False, None) if on.no_kubernetes_node else _ABSENT
    if k.gone:
        return _gone(m, policy, now) if on.gone else _NONE
    if (k.ready and not k.cordoned and not k.taints and not k.conditions
            and not _gpu_lost(k, policy)):
        return _NONE

    causes: list[str] = []
    pending = False
    down = False
    since: float | None = None
    if not k.ready and on.not_ready:
        since = _since(m.not_ready_since, now)
        if now >= drain_at(since, policy):
            causes.append("k8s node NotReady")
            rule = policy.down_on.not_ready
            down = rule.enabled and now >= since + rule.grace
        else:
            pending = True
    cond_causes, cond_pending, cond_since = _conditions(k, m, policy, now)
    causes.extend(cond_causes)
    pending = pending or cond_pending
    if on.taints:
        for t in k.taints:
            if t.effect == "NoExecute" and t.key in policy.drain_taints:
                causes.append(f"k8s taint {clean_reason_text(t.key)}")
    held = ""
    if k.cordoned and policy.cordon != "syncd":
        held = _CORDON_HELD
    elif k.cordoned and on.cordoned:
        causes.append("k8s node cordoned")
    if on.gpu_loss:
        for res in policy.gpu_resources:
            cap = k.gpu_capacity.get(res.name, 0)
            alloc = k.gpu_allocatable.get(res.name, 0)
            if cap > alloc:
                causes.append(f"k8s GPU loss {clean_reason_text(res.name)} {alloc}/{cap}")
    return Assessment(tuple(causes), pending, since, down=down, condition_since=cond_since,
                      held=held)


def _gpu_lost(k: KubeNode, policy: Policy) -> bool:
    return any(
        k.gpu_capacity.get(r.name, 0) > k.gpu_allocatable.get(r.name, 0)
        for r in policy.gpu_resources
    )
