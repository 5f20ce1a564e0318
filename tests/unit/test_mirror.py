"""The mirror's decision (pure): which Kubernetes nodes get syncd's condition and taint, that a
mark once written is a fixed point, that syncd's own drains and marks are never mirrored or
acted on, and the config checks that keep the marks from ever becoming causes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.config import ConfigError, load
from syncd.core.memory import Memory
from syncd.core.mirror import AVAILABLE, MAX_MESSAGE, MirrorChange, mirror_plan, mirror_taint
from syncd.core.model import BaseState, KubeNode, KubeView, SlurmNode, SlurmView, Taint
from syncd.core.ownership import make_reason
from syncd.core.planner import plan
from syncd.core.policy import Capacity, ConditionCause, Mirror, Policy
from syncd.core.validate import is_reason
from syncd.kube.records import parse_node

ON = Policy(mirror=Mirror(enabled=True), capacity=Capacity(hold_jobs=False, features=False))
TAINTED = replace(ON, mirror=Mirror(enabled=True, taint=True))
OURS = make_reason(ON, "gpu001", "k8s node NotReady")


def _k(name: str = "gpu001", **kw: Any) -> KubeNode:
    return KubeNode(f"k-{name}", name, **kw)


def _s(name: str = "gpu001", **kw: Any) -> SlurmNode:
    return SlurmNode(name, gres_gpus=8, **kw)


def _plan(k: KubeNode, s: SlurmNode | None, policy: Policy = ON,
          **kw: Any) -> tuple[MirrorChange, ...]:
    slurm = SlurmView({s.name: s} if s else {}, boot_time="b")
    return mirror_plan(KubeView({k.slurm_name: k}), slurm, Memory(), policy, **kw).changes


def _applied(k: KubeNode, c: MirrorChange) -> KubeNode:
    """What the Kubernetes node carries once the change is written (the watcher's view)."""
    mirror = k.mirror
    if c.condition is not None:
        mirror = (c.condition.status, c.condition.reason, c.condition.message)
    return replace(k, mirror=mirror, mirror_taint=k.mirror_taint if c.taint is None else c.taint)


@pytest.mark.parametrize(("slurm", "word", "message"), [
    (_s(flags=frozenset({"DRAIN"}), reason="fan replacement", reason_user="root"),
     "SlurmDrain", "root: fan replacement"),
    (_s(state=BaseState.DOWN, flags=frozenset({"NOT_RESPONDING"}), reason="Not responding",
        reason_user="slurm"), "SlurmDown", "slurmctld (node not responding): Not responding"),
    (_s(flags=frozenset({"FAIL"}), reason="bad HBM", reason_user="nhc"), "SlurmFail",
     "nhc: bad HBM"),
    (_s(state=BaseState.FUTURE), "SlurmFuture", "unknown user (no reason text)"),
    (_s(flags=frozenset({"DRAIN", "NOT_RESPONDING"}), reason="NHC: ECC : Not responding",
        reason_user="root"), "SlurmDrain", "root: NHC: ECC"),
])
def test_out_of_service_by_someone_else_is_marked(slurm: SlurmNode, word: str,
                                                  message: str) -> None:
    (c,) = _plan(_k(), slurm)
    assert c.unavailable and c.kube_node == "k-gpu001" and c.taint is None
    assert c.condition is not None
    assert (c.condition.type, c.condition.status) == ("SlurmNodeUnavailable", "True")
    assert (c.condition.reason, c.condition.message) == (word, message)
    assert c.condition.transition


def test_only_not_responding_is_marked_after_not_responding_after() -> None:
    """slurmctld shows a node it has just resumed as IDLE+NOT_RESPONDING for about a second;
    that blip is not mirrored, a slurmd silent for not_responding_after (10 s) is."""
    silent = _s(flags=frozenset({"NOT_RESPONDING"}))
    view = SlurmView({"gpu001": silent}, boot_time="b")
    k8s = KubeView({"gpu001": _k()})
    first = mirror_plan(k8s, view, Memory(), ON, now=100.0)
    assert first.changes == () and first.unresponsive == {"gpu001": 100.0}
    early = mirror_plan(k8s, view, Memory(), ON, now=109.9, unresponsive=first.unresponsive)
    assert early.changes == () and early.unresponsive == {"gpu001": 100.0}
    late = mirror_plan(k8s, view, Memory(), ON, now=110.0, unresponsive=early.unresponsive)
    (c,) = late.changes
    assert c.condition is not None and c.condition.reason == "SlurmNotResponding"
    assert c.condition.message == "slurmctld (node not responding): no reason given"
    # Answering again ends the timer; a marked node is cleared at once.
    back = mirror_plan(KubeView({"gpu001": _applied(_k(), c)}),
                       SlurmView({"gpu001": _s()}, boot_time="b"), Memory(), ON, now=111.0,
                       unresponsive=late.unresponsive)
    assert back.unresponsive == {} and back.changes[0].condition is not None
    assert back.changes[0].condition.status == "False"
    # A resume's blip on a marked node clears it rather than keeping it marked.
    marked = _k(mirror=("True", "SlurmDrain", "root: x"))
    (clear,) = mirror_plan(KubeView({"gpu001": marked}), view, Memory(), ON, now=5.0).changes
    assert clear.condition is not None and clear.condition.status == "False"
    assert "not_responding_after" in clear.why
    # DOWN, drained or FAIL with NOT_RESPONDING is marked at once.
    for s in (_s(state=BaseState.DOWN, flags=frozenset({"NOT_RESPONDING"})),
              _s(flags=frozenset({"NOT_RESPONDING", "DRAIN"}), reason="x", reason_user="a"),
              _s(flags=frozenset({"NOT_RESPONDING", "FAIL"}))):
        assert mirror_plan(k8s, SlurmView({"gpu001": s}), Memory(), ON, now=0.0).changes


@pytest.mark.parametrize("slurm", [
    _s(),
    _s(state=BaseState.MIXED),
    _s(flags=frozenset({"DRAIN"}), reason=OURS, reason_user="root"),  # syncd's own drain
    _s(state=BaseState.DOWN, reason=OURS),  # syncd's own DOWN
])
def test_schedulable_or_syncds_own_drain_is_not_marked(slurm: SlurmNode) -> None:
    assert _plan(_k(), slurm) == ()
    assert _plan(_k(), slurm, TAINTED) == ()
    # A mark left from before (the node was someone else's) is cleared, saying why.
    (c,) = _plan(_k(mirror=("True", "SlurmDrain", "root: x"), mirror_taint=True), slurm,
                 TAINTED)
    assert c.condition is not None and c.condition.status == "False" and c.taint is False
    assert c.why.startswith("Slurm schedules" if not slurm.unavailable else "the node is out "
                            "of service by syncd's own drain")


def test_the_taint_follows_the_condition_when_enabled() -> None:
    drained = _s(flags=frozenset({"DRAIN"}), reason="x", reason_user="root")
    (c,) = _plan(_k(), drained, TAINTED)
    assert c.taint is True and c.condition is not None
    assert mirror_taint(TAINTED) == Taint("syncd.io/slurm-unavailable", "NoSchedule")
    # Marked already: only a missing taint is written, and nothing once both are there.
    marked = _applied(_k(), c)
    assert _plan(replace(marked, mirror_taint=False), drained, TAINTED)[0].condition is None
    assert _plan(marked, drained, TAINTED) == ()


def test_cleared_in_slurm_sets_the_condition_false_and_removes_the_taint() -> None:
    marked = _k(mirror=("True", "SlurmDrain", "root: x"), mirror_taint=True)
    (c,) = _plan(marked, _s(), TAINTED)
    assert not c.unavailable and c.taint is False and c.condition is not None
    assert c.why == "Slurm schedules on the node again"
    assert (c.condition.status, c.condition.reason, c.condition.message) == AVAILABLE
    assert c.condition.transition
    assert _plan(_applied(marked, c), _s(), TAINTED) == ()
    # The node once marked keeps the False condition: nothing more to write.
    assert _plan(_k(mirror=AVAILABLE), _s(), TAINTED) == ()
    # A node Slurm no longer lists is cleared too; a never-marked node is left alone.
    assert _plan(marked, None, TAINTED)[0].why == "Slurm no longer lists the node"
    assert _plan(_k(), None, TAINTED) == ()


def test_a_new_slurm_reason_rewrites_the_message_without_a_transition() -> None:
    marked = _k(mirror=("True", "SlurmDrain", "root: fan"))
    (c,) = _plan(marked, _s(flags=frozenset({"DRAIN"}), reason="PSU", reason_user="root"))
    assert c.condition is not None and c.condition.message == "root: PSU"
    assert not c.condition.transition


def test_the_taint_is_removed_when_only_the_condition_is_wanted() -> None:
    marked = _k(mirror=("True", "SlurmDrain", "root: x"), mirror_taint=True)
    (c,) = _plan(marked, _s(flags=frozenset({"DRAIN"}), reason="x", reason_user="root"))
    assert c.condition is None and c.taint is False


def test_the_message_is_bounded_and_reason_safe() -> None:
    wild = _s(flags=frozenset({"DRAIN"}), reason="x;rm -rf /\n'$(id)'" + "y" * 500,
              reason_user="root")
    (c,) = _plan(_k(), wild)
    assert c.condition is not None
    assert len(c.condition.message) <= MAX_MESSAGE and is_reason(c.condition.message)


def test_nothing_is_decided_when_off_stale_unmanaged_gone_or_just_written() -> None:
    drained = _s(flags=frozenset({"DRAIN"}), reason="x", reason_user="root")
    view = SlurmView({"gpu001": drained}, boot_time="b")
    assert _plan(_k(), drained, Policy()) == ()
    stale = KubeView({"gpu001": _k()}, synced=False)
    assert mirror_plan(stale, view, Memory(), ON).changes == ()
    assert mirror_plan(KubeView({"gpu001": _k()}), SlurmView({}, ok=False), Memory(),
                       ON).changes == ()
    assert _plan(_k(), drained, replace(ON, managed_nodes="cpu.*")) == ()
    assert _plan(_k(gone=True), drained) == ()
    # A node syncd wrote to in this pass is decided on its next read, but still counted.
    out = mirror_plan(KubeView({"gpu001": _k()}), view, Memory(), ON, skip={"gpu001"})
    assert out.changes == () and out.unavailable == 1


_STATES = st.builds(
    lambda state, flags, reason: _s(state=state, flags=frozenset(flags), reason=reason,
                                    reason_user="root" if reason else ""),
    st.sampled_from([BaseState.IDLE, BaseState.MIXED, BaseState.DOWN, BaseState.FUTURE]),
    st.sets(st.sampled_from(["DRAIN", "NOT_RESPONDING", "FAIL"])),
    st.sampled_from(["", "fan", OURS, "Not responding", OURS + " : Not responding"]),
)
_MARKS = st.sampled_from([None, AVAILABLE, ("True", "SlurmDrain", "root: fan"),
                          ("True", "Forged", "someone else wrote this")])


@given(slurm=_STATES, mark=_MARKS, tainted=st.booleans(), taint=st.booleans(),
       silent_since=st.sampled_from([1000.0, 0.0]))
def test_a_written_mark_is_a_fixed_point(slurm: SlurmNode, mark: tuple[str, str, str] | None,
                                         tainted: bool, taint: bool,
                                         silent_since: float) -> None:
    policy = replace(ON, mirror=Mirror(enabled=True, taint=taint))
    k = _k(mirror=mark, mirror_taint=tainted)
    timing = {"now": 1000.0, "unresponsive": {"gpu001": silent_since}}
    changes = _plan(k, slurm, policy, **timing)
    if changes:
        after = _applied(k, changes[0])
        assert _plan(after, slurm, policy, **timing) == ()
        marked = after.mirror is not None and after.mirror[0] == "True"
        assert marked == changes[0].unavailable
        assert after.mirror_taint == (taint and changes[0].unavailable)


def test_the_planner_never_acts_on_the_marks() -> None:
    policy = replace(TAINTED, conditions=(ConditionCause("KernelDeadlock"),))
    marked = replace(_k(), mirror=("True", "SlurmDrain", "root: x"), mirror_taint=True,
                     taints=(mirror_taint(policy),))
    p = plan(KubeView({"gpu001": marked}), SlurmView({"gpu001": _s()}, boot_time="b"), policy,
             Memory(), 0.0)
    assert p.changes == () and p.withheld == ()


def test_the_watcher_reads_exactly_the_mirror_condition_and_taint_key() -> None:
    obj = {"metadata": {"name": "n1"}, "spec": {"taints": [
        {"key": "syncd.io/slurm-unavailable", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "effect": "NoSchedule"}]},
        "status": {"conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "SlurmNodeUnavailable", "status": "True", "reason": "SlurmDrain",
             "message": "root: fan"},
            {"type": "KernelDeadlock", "status": "True", "reason": "Deadlock", "message": "m"}]}}
    kinds = frozenset({"KernelDeadlock"})
    rec, _ = parse_node(obj, (), "", "", kinds, ("SlurmNodeUnavailable",
                                                 "syncd.io/slurm-unavailable"))
    assert rec.mirror == ("True", "SlurmDrain", "root: fan") and rec.mirror_taint
    assert [c[0] for c in rec.conditions] == ["KernelDeadlock"]
    off, _ = parse_node(obj, (), "", "", kinds)
    assert off.mirror is None and not off.mirror_taint


@pytest.mark.parametrize(("mirror", "extra", "needle"), [
    ({"condition": "KernelDeadlock"}, {"conditions": [{"type": "KernelDeadlock"}]},
     "also in policy.conditions"),
    ({"taint_key": "node.kubernetes.io/unreachable"}, {}, "reserved"),
    ({"taint_key": "example.com/x"}, {"drain_taints": ["example.com/x"]},
     "also in policy.drain_taints"),
    ({"condition": "Ready"}, {}, "the kubelet's condition"),
    ({"condition": "slurm unavailable"}, {}, "CamelCase"),
    ({"taint_key": "bad key!"}, {}, "must be a taint key"),
    ({"taint_key": "a/b/c"}, {}, "must be a taint key"),
])
def test_config_keeps_the_marks_from_becoming_causes(mirror: dict[str, Any],
                                                    extra: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load({"policy": {"mirror": {"enabled": True, **mirror}, **extra}}, {})
    assert any(p.startswith("policy.mirror.") and needle in p for p in err.value.problems), \
        err.value.problems


def test_config_accepts_the_mirror_on() -> None:
    s = load({"policy": {"mirror": {"enabled": True, "taint": True,
                                    "taint_key": "example.com/slurm-out"}}}, {})
    assert s.policy.mirror == Mirror(True, "SlurmNodeUnavailable", True,
                                     "example.com/slurm-out", 10.0)
