"""policy.down_on and policy.conditions in the planner (pure): DOWN only after the grace, a
re-created Node never goes DOWN, our drain becomes DOWN, conditions drain after drain_after."""

from __future__ import annotations

from dataclasses import replace

from syncd.core.memory import Memory
from syncd.core.model import ActionKind, BaseState, KubeNode, KubeView, SlurmNode, SlurmView
from syncd.core.planner import plan
from syncd.core.policy import Capacity, ConditionCause, DownOn, DownRule, Policy
from syncd.core.timers import next_deadline

BASE = Policy(capacity=Capacity(hold_jobs=False, features=False), drain_after=30.0,
              resume_after=60.0)
DOWN = replace(BASE, down_on=DownOn(deleted=DownRule(True, 15.0),
                                    not_ready=DownRule(True, 300.0)))


def _k(**kw: object) -> KubeView:
    return KubeView({"gpu001": KubeNode("gpu001", "gpu001", **kw)})  # type: ignore[arg-type]


def _s(**kw: object) -> SlurmView:
    return SlurmView({"gpu001": SlurmNode("gpu001", gres_gpus=8, **kw)},  # type: ignore[arg-type]
                     boot_time="b")


def test_deleted_goes_down_after_the_grace_and_not_before() -> None:
    p = plan(_k(gone=True), _s(), DOWN, Memory(), 0.0)
    assert p.changes == () and next_deadline(p.memory, DOWN, 0.0) == 15.0
    p = plan(_k(gone=True), _s(), DOWN, p.memory, 14.9)
    assert p.changes == ()
    p = plan(_k(gone=True), _s(), DOWN, p.memory, 15.0)
    (c,) = p.changes
    assert c.kind is ActionKind.DOWN and "k8s node deleted" in c.reason
    # Owned and resumed like a drain once the node is back and slurmd answers.
    down = _s(state=BaseState.DOWN, reason=c.reason)
    p = plan(_k(), down, DOWN, p.memory, 20.0)
    p = plan(_k(), down, DOWN, p.memory, 80.0)
    assert [x.kind for x in p.changes] == [ActionKind.RESUME]


def test_a_node_recreated_within_the_grace_is_never_touched() -> None:
    p = plan(_k(gone=True), _s(), DOWN, Memory(), 0.0)
    p = plan(_k(), _s(), DOWN, p.memory, 10.0)  # kubelet re-registered
    assert p.changes == () and p.memory.node("gpu001").gone_since is None
    p = plan(_k(gone=True), _s(), DOWN, p.memory, 20.0)
    p = plan(_k(gone=True), _s(), DOWN, p.memory, 30.0)
    assert p.changes == ()  # a new grace from the second deletion
    assert [c.kind for c in plan(_k(gone=True), _s(), DOWN, p.memory, 35.0).changes] == [
        ActionKind.DOWN]


def test_without_down_on_a_deleted_node_drains_at_once() -> None:
    (c,) = plan(_k(gone=True), _s(), BASE, Memory(), 0.0).changes
    assert c.kind is ActionKind.DRAIN


def test_not_ready_drains_then_goes_down_after_its_grace() -> None:
    p = plan(_k(ready=False), _s(), DOWN, Memory(), 0.0)
    p = plan(_k(ready=False), _s(), DOWN, p.memory, 30.0)
    (c,) = p.changes
    assert c.kind is ActionKind.DRAIN
    drained = _s(flags=frozenset({"DRAIN"}), reason=c.reason)
    assert plan(_k(ready=False), drained, DOWN, p.memory, 299.0).changes == ()
    (d,) = plan(_k(ready=False), drained, DOWN, p.memory, 300.0).changes
    assert d.kind is ActionKind.DOWN


def test_a_listed_condition_drains_after_drain_after_with_its_text() -> None:
    policy = replace(BASE, conditions=(ConditionCause("KernelDeadlock", "True",
                                                      "kernel deadlock"),))
    cond = (("KernelDeadlock", "True", "DockerHung task docker_blocked"),)
    p = plan(_k(conditions=cond), _s(), policy, Memory(), 0.0)
    assert p.changes == ()
    (c,) = plan(_k(conditions=cond), _s(), policy, p.memory, 30.0).changes
    assert c.kind is ActionKind.DRAIN
    assert "k8s condition kernel deadlock DockerHung task docker_blocked" in c.reason
    other = (("KernelDeadlock", "False", ""),)
    assert plan(_k(conditions=other), _s(), policy, Memory(), 100.0).changes == ()
