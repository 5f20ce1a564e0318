"""Small helpers shared by the Slurm integration tests (real slurmctld, no fakes)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping

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


async def until(
    port: SlurmPort,
    check: Callable[[SlurmView], bool],
    *,
    within: float = 30.0,
    what: str = "condition",
) -> SlurmView:
    """Read until ``check`` holds; AssertionError after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        view = await port.read()
        if check(view):
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(0.1)


def node(view: SlurmView, name: str) -> SlurmNode:
    return view.nodes[name]
