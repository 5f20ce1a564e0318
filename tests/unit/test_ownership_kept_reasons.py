"""Ownership that does not depend on Slurm clearing reasons (24.11 and 25.11 keep the reason
after State=RESUME; 25.11 appends " : Not responding" when a drained node goes silent)."""

from __future__ import annotations

from dataclasses import replace

from syncd.core.memory import Memory
from syncd.core.model import ActionKind, BaseState, KubeNode, KubeView, SlurmNode, SlurmView
from syncd.core.ownership import owner_of, owns
from syncd.core.planner import plan
from syncd.core.policy import Capacity, Policy

POLICY = Policy(capacity=Capacity(hold_jobs=False, features=False), resume_after=0.0)


def _k(**kw: object) -> KubeView:
    return KubeView({"gpu001": KubeNode("gpu001", "gpu001", **kw)})  # type: ignore[arg-type]


def _s(**kw: object) -> SlurmView:
    return SlurmView({"gpu001": SlurmNode("gpu001", **kw)}, boot_time="b")  # type: ignore[arg-type]


def _drained_then_resumed() -> tuple[str, Memory]:
    p = plan(_k(cordoned=True), _s(), POLICY, Memory(), 0.0)
    (drain,) = p.changes
    reason = drain.reason
    on = _s(flags=frozenset({"DRAIN"}), reason=reason)
    p = plan(_k(), on, POLICY, p.memory, 1.0)  # causes clear, resume_after 0: resumed
    assert [c.kind for c in p.changes] == [ActionKind.RESUME]
    return reason, p.memory


def test_a_reason_kept_after_our_resume_is_not_ours_when_someone_drains_again() -> None:
    reason, memory = _drained_then_resumed()
    assert memory.node("gpu001").released == reason
    # slurmctld drains it itself (gres count lower); Slurm kept syncd's old text
    theirs = _s(flags=frozenset({"DRAIN"}), reason=reason, reason_user="slurm")
    s = theirs.nodes["gpu001"]
    assert not owns(POLICY, s, memory.node("gpu001"))
    assert "kept after syncd resumed" in owner_of(POLICY, s, memory.node("gpu001"))
    for t in range(3, 10):  # no resume loop
        assert plan(_k(), theirs, POLICY, memory, float(t)).changes == ()
    # ...until syncd drains it again with that text itself
    p = plan(_k(cordoned=True), _s(), POLICY, memory, 10.0)
    assert p.memory.node("gpu001").released == "" and p.changes[0].reason == reason


def test_our_drain_with_not_responding_appended_is_still_ours() -> None:
    p = plan(_k(cordoned=True), _s(), POLICY, Memory(), 0.0)
    reason = p.changes[0].reason
    down = _s(state=BaseState.DOWN, flags=frozenset({"DRAIN"}),
              reason=reason + " : Not responding")
    assert owns(POLICY, down.nodes["gpu001"], p.memory.node("gpu001"))
    back = _s(state=BaseState.DOWN, flags=frozenset({"DRAIN"}), reason=reason + " : Not responding")
    q = plan(_k(), back, POLICY, p.memory, 1.0)
    assert [c.kind for c in q.changes] == [ActionKind.RESUME]  # slurmd answers: resumed


def test_anything_else_appended_or_no_reason_is_not_ours() -> None:
    p = plan(_k(cordoned=True), _s(), POLICY, Memory(), 0.0)
    reason = p.changes[0].reason
    m = replace(p.memory.node("gpu001"), ledger_reason="")  # a lost ledger: token check only
    edited = SlurmNode("gpu001", flags=frozenset({"DRAIN"}), reason=reason + " : bad HBM",
                       reason_user="admin")
    assert not owns(POLICY, edited, m)
    assert "appended: 'bad HBM'" in owner_of(POLICY, edited, m)
    blank = SlurmNode("gpu001", flags=frozenset({"DRAIN"}), reason="", reason_user="admin")
    assert not owns(POLICY, blank, m)
