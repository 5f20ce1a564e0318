"""The planner's unchanged-node fast path rests on equality, not on object identity: a backend
that builds new but equal objects still gets it, and a changed field always breaks it."""

from __future__ import annotations

from dataclasses import replace

from syncd.core.memory import Memory
from syncd.core.model import KubeNode, KubeView, SlurmNode, SlurmView
from syncd.core.planner import plan
from syncd.core.policy import Capacity, Policy

POLICY = Policy(capacity=Capacity(hold_jobs=False))


def _views(names: list[str]) -> tuple[KubeView, SlurmView]:
    k = {n: KubeNode(n, n, gpu_capacity={"nvidia.com/gpu": 8},
                     gpu_allocatable={"nvidia.com/gpu": 8}) for n in names}
    s = {n: SlurmNode(n, available_features=("gpu", "gpu_avail_8"),
                      active_features=("gpu", "gpu_avail_8"), gres_gpus=8) for n in names}
    return KubeView(k), SlurmView(s, boot_time="b")


def _fresh(view: SlurmView) -> SlurmView:
    """What a backend that never reuses objects returns: equal copies."""
    return SlurmView({n: replace(s) for n, s in view.nodes.items()}, boot_time=view.boot_time)


def test_equal_new_objects_are_settled_and_a_change_is_not() -> None:
    names = [f"gpu{i:03d}" for i in range(100)]
    k8s, slurm = _views(names)
    first = plan(k8s, slurm, POLICY, Memory(), 0.0)
    assert not first.changes and len(first.memory.settled) == 100
    again = _fresh(slurm)
    assert all(again.nodes[n] is not slurm.nodes[n] for n in names)
    second = plan(k8s, again, POLICY, first.memory, 1.0)
    assert second.memory.settled.keys() == first.memory.settled.keys()
    # the settled entries are the cached ones: the nodes were skipped, not re-planned
    assert all(second.memory.settled[n] is first.memory.settled[n] for n in names)
    nodes = dict(again.nodes)
    nodes["gpu007"] = replace(nodes["gpu007"], active_features=("gpu",))
    third = plan(k8s, SlurmView(nodes, boot_time="b"), POLICY, second.memory, 2.0)
    assert [c.node for c in third.changes] == ["gpu007"]


def test_a_contested_name_gets_no_drain_and_one_drift_event() -> None:
    k8s, slurm = _views(["gpu001", "gpu002"])
    nodes = {n: k for n, k in k8s.nodes.items() if n != "gpu002"}
    contested = KubeView(nodes, contested=frozenset({"gpu002"}))
    policy = replace(POLICY, causes=replace(POLICY.causes, no_kubernetes_node=True))
    first = plan(contested, slurm, policy, Memory(), 0.0)
    assert first.changes == () and first.withheld == ()
    assert [(e.subject, e.data["why"]) for e in first.events] == [("gpu002", "name_collision")]
    second = plan(contested, slurm, policy, first.memory, 1.0)
    assert second.changes == () and second.events == ()
    assert [c.node for c in plan(KubeView(nodes), slurm, policy, second.memory, 2.0).changes] \
        == ["gpu002"]  # without the contest, a missing node is a missing node again
