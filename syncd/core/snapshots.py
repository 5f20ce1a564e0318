"""JSON-ready renderings of node snapshots, for events and runbook output."""

from __future__ import annotations

from syncd.core.model import KubeNode, SlurmNode
from syncd.core.ownership import slinky_owner


def kube_json(k: KubeNode | None) -> dict[str, object] | None:
    if k is None:
        return None
    return {
        "name": k.name,
        "ready": k.ready,
        "cordoned": k.cordoned,
        "gone": k.gone,
        "taints": [{"key": t.key, "effect": t.effect, "value": t.value} for t in k.taints],
        "gpu_capacity": dict(k.gpu_capacity),
        "gpu_allocatable": dict(k.gpu_allocatable),
        "gpu_held": dict(k.gpu_held),
    }


def slurm_json(s: SlurmNode | None) -> dict[str, object] | None:
    if s is None:
        return None
    out: dict[str, object] = {
        "name": s.name,
        "state": s.state_text,
        "reason": s.reason,
        "reason_user": s.reason_user,
        "available_features": list(s.available_features),
        "active_features": list(s.active_features),
        "gres_gpus": s.gres_gpus,
        "gres_used_gpus": s.gres_used_gpus,
        "hold_gpus": s.hold_gpus,
    }
    owner = slinky_owner(s.reason)
    if owner:
        # Slinky's controllers own and undrain their own reasons; subscribers (NVSentinel's
        # drain monitor among them) can tell those drains apart here (docs/slinky.md).
        out["reason_owner"] = owner
    return out
