"""Usable GPUs per node, and the Slurm features and placeholder holds that express them.

This runs for every node on every reconcile, so it avoids per-node allocations on the common
path where Slurm already agrees.
"""

from __future__ import annotations

import re
from functools import lru_cache

from syncd.core.model import KubeNode, SlurmNode
from syncd.core.policy import GpuResource, Policy, template_pattern


def usable(k: KubeNode, resource: str) -> int:
    """Allocatable minus what non-Slurm pods hold, never below zero."""
    return max(0, k.gpu_allocatable.get(resource, 0) - k.gpu_held.get(resource, 0))


def usable_total(k: KubeNode, policy: Policy) -> int:
    return sum(usable(k, r.name) for r in policy.gpu_resources)


@lru_cache(maxsize=8)
def _pattern(templates: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{template_pattern(t).pattern})" for t in templates))


def templates(policy: Policy, earlier: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The feature templates syncd owns: the policy's and the earlier ones it wrote with."""
    return tuple(sorted({r.feature_template for r in policy.gpu_resources} | set(earlier)))


def owned_feature_pattern(policy: Policy, earlier: tuple[str, ...] = ()) -> re.Pattern[str]:
    """Features in syncd's namespace; every other feature on a node is preserved."""
    return _pattern(templates(policy, earlier))


def refused_gpu_count(k: KubeNode, s: SlurmNode, policy: Policy) -> str:
    """Why the node's Kubernetes GPU counts are not believable, or the empty string."""
    cap = policy.capacity.max_gpus_per_node
    for res in policy.gpu_resources:
        for what, counts in (("allocatable", k.gpu_allocatable), ("capacity", k.gpu_capacity)):
            n = counts.get(res.name, 0)
            if n > cap:
                return f"{res.name} {what} {n} is above capacity.max_gpus_per_node ({cap})"
            whole = "mig-" not in res.name
            if whole and s.gres_gpus > 0 and n > s.gres_gpus:
                return (f"{res.name} {what} {n} is above the node's Slurm GRES "
                        f"(gpu:{s.gres_gpus})")
    return ""


@lru_cache(maxsize=8)
def _by_template(resources: tuple[GpuResource, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    groups: dict[str, list[str]] = {}
    for r in resources:
        groups.setdefault(r.feature_template, []).append(r.name)
    return tuple(sorted((t, tuple(names)) for t, names in groups.items()))


def owned_features(k: KubeNode, resources: tuple[GpuResource, ...]) -> tuple[str, ...]:
    """``gpu_avail_<N>`` (per template) for every resource group the node has at all."""
    alloc, cap, held = k.gpu_allocatable, k.gpu_capacity, k.gpu_held
    out: list[str] = []
    for template, names in _by_template(resources):
        total = 0
        present = False
        for name in names:
            if name in alloc or name in cap:
                present = True
                total += max(0, alloc.get(name, 0) - held.get(name, 0))
        if present:
            out.append(template.replace("{n}", str(total)))
    return tuple(out)


def desired_features(
    k: KubeNode, s: SlurmNode, policy: Policy, owned: re.Pattern[str]
) -> tuple[str, ...] | None:
    """The full feature list to write (available = active), or None when Slurm already has it."""
    ours = owned_features(k, policy.gpu_resources)
    avail = s.available_features
    match = owned.fullmatch
    kept = tuple(f for f in avail if match(f) is None)
    if (len(kept) + len(ours) == len(avail) and s.active_features == avail
            and all(f in avail for f in ours)):
        return None
    want = kept + ours
    want_set = set(want)
    if want_set == set(avail) and want_set == set(s.active_features):
        return None
    return want


def desired_hold(k: KubeNode, s: SlurmNode, policy: Policy) -> int | None:
    """GPUs syncd's placeholder jobs should hold on the node, or None when they already do.

    Slurm's Gres count cannot be lowered at run time (docs/facts/slurm.md §3), so the GPUs
    Kubernetes uses are held by placeholder jobs instead; see docs/capacity.md.
    """
    if s.gres_gpus <= 0:
        return None
    want = min(s.gres_gpus, max(0, s.gres_gpus - usable_total(k, policy)))
    return None if want == s.hold_gpus else want
