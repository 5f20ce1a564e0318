"""Which nodes a plan looks at: every one, or (incrementally) those named as changed plus
those the last plan left unsettled. The rest keep their settled entries (syncd.core.memory).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from syncd.core.memory import Memory
from syncd.core.model import KubeNode, KubeView, SlurmNode, SlurmView
from syncd.core.policy import Policy


@dataclass(slots=True)
class Selection:
    incremental: bool
    #: the names looked at (incremental only; empty for a full plan)
    looked: set[str]
    #: the settled entries the plan starts from (those of the nodes not looked at)
    settled: dict[str, tuple[KubeNode | None, SlurmNode]]
    cache: Mapping[str, tuple[KubeNode | None, SlurmNode]]
    slurm_items: list[tuple[str, SlurmNode]]
    kube_items: list[tuple[str, KubeNode]]
    managed_count: int


def select(k8s: KubeView, slurm: SlurmView, memory: Memory, policy: Policy,
           managed: re.Pattern[str], *, only: Collection[str] | None,
           restarted: bool) -> Selection:
    cache = memory.settled if memory.settled_policy is policy else {}
    if (only is not None and memory.watch is not None and cache is memory.settled
            and memory.planned_size == len(slurm.nodes) and not restarted):
        looked = set(only) | memory.watch
        settled = dict(cache)
        for name in looked:
            settled.pop(name, None)
        return Selection(
            True, looked, settled, cache,
            [(n, slurm.nodes[n]) for n in sorted(looked) if n in slurm.nodes],
            [(n, k8s.nodes[n]) for n in sorted(looked)
             if n in k8s.nodes and n not in slurm.nodes],
            memory.managed_count)
    return Selection(
        False, set(), {}, cache, list(slurm.nodes.items()),
        [(n, k) for n, k in k8s.nodes.items() if n not in slurm.nodes],
        sum(1 for n in slurm.nodes if managed.fullmatch(n) is not None))
