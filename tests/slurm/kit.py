"""Small helpers shared by the Slurm integration tests (real slurmctld, no fakes)."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping

from syncd.core.memory import Memory
from syncd.core.model import KubeNode, KubeView, SlurmNode, SlurmView
from syncd.core.planner import Plan, plan
from syncd.core.policy import Policy
from syncd.core.ports import SlurmPort

GPU = "nvidia.com/gpu"


def kube(nodes: Mapping[str, int]) -> KubeView:
    """Healthy Kubernetes nodes with 8 GPUs each, ``nodes`` maps name -> GPUs held by pods."""
    return KubeView(nodes={
        n: KubeNode(name=n, slurm_name=n, gpu_capacity={GPU: 8}, gpu_allocatable={GPU: 8},
                    gpu_held={GPU: held})
        for n, held in nodes.items()
    })


def policy_for(*nodes: str) -> Policy:
    """Only these nodes are managed, so the other sandbox nodes never become drain candidates."""
    return Policy(managed_nodes="|".join(re.escape(n) for n in nodes),
                  resume_after=0.0)


async def reconcile(
    port: SlurmPort, k8s: KubeView, policy: Policy, memory: Memory | None = None
) -> Plan:
    """Read, plan and apply once, like one engine tick."""
    view = await port.read()
    p = plan(k8s, view, policy, memory or Memory(), time.time())
    for action in p.actions:
        await port.apply(action)
    return p


def read_when(
    port: SlurmPort, check: Callable[[SlurmView], bool]
) -> Callable[[], Awaitable[SlurmView | None]]:
    """A check for ``eventually``: read the port; its view once ``check`` holds, else None."""
    async def attempt() -> SlurmView | None:
        view = await port.read()
        return view if check(view) else None
    return attempt


def node(view: SlurmView, name: str) -> SlurmNode:
    return view.nodes[name]
