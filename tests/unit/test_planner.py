"""Table-driven tests of every planner rule."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hostlist import expand_hostlist

from syncd.core import manual
from syncd.core.batching import batch
from syncd.core.memory import Memory, reset_breaker
from syncd.core.model import Action, ActionKind, BaseState, EventType, NodeChange, Taint
from syncd.core.ownership import is_syncd_reason, make_reason
from syncd.core.planner import plan
from syncd.core.policy import Breaker, Capacity, Causes, Flap, GpuResource, Policy
from tests.unit.planner_kit import (
    GPU,
    Run,
    apply_actions,
    kinds,
    knode,
    kview,
    snode,
    sview,
)

D = ActionKind.DRAIN
R = ActionKind.RESUME
F = ActionKind.SET_FEATURES
H = ActionKind.SET_HOLD
NO_HOLDS = Policy(capacity=Capacity(hold_jobs=False))


# --- capacity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alloc", "held", "features_before", "want"),
    [
        (8, 0, ("gpu", "gpu_avail_8"), None),
        (8, 3, ("gpu", "gpu_avail_8"), ("gpu", "gpu_avail_5")),
        (8, 11, ("gpu", "gpu_avail_8"), ("gpu", "gpu_avail_0")),  # never below zero
        (6, 0, ("gpu", "ib", "gpu_avail_8"), ("gpu", "ib", "gpu_avail_6")),  # others kept
        (8, 0, ("gpu",), ("gpu", "gpu_avail_8")),  # slurm.conf reset our feature
        (8, 0, ("gpu_avail_8", "gpu"), None),  # order does not matter
    ],
)
def test_capacity_features(
    alloc: int, held: int, features_before: tuple[str, ...], want: tuple[str, ...] | None
) -> None:
    k = kview(knode("gpu001", alloc=alloc, cap=alloc, held=held))
    s = sview(snode("gpu001", features=features_before))
    p = plan(k, s, NO_HOLDS, Memory(), 0.0)
    got = [c.features for c in p.changes if c.kind is F]
    assert got == ([] if want is None else [want])


def test_available_and_active_are_written_together() -> None:
    k = kview(knode("gpu001", held=2))
    s = sview(replace(snode("gpu001"), active_features=("gpu",)))
    p = plan(k, s, NO_HOLDS, Memory(), 0.0)
    assert [a.kind for a in p.actions] == [F]
    after = apply_actions(s, p.actions).nodes["gpu001"]
    assert after.available_features == after.active_features == ("gpu", "gpu_avail_6")


def test_active_drift_alone_triggers_a_write() -> None:
    k = kview(knode("gpu001"))
    s = sview(replace(snode("gpu001"), active_features=("gpu",)))
    assert kinds(plan(k, s, NO_HOLDS, Memory(), 0.0), "gpu001") == [F]


def test_resources_sharing_a_template_are_summed_and_mig_has_its_own() -> None:
    policy = replace(NO_HOLDS, gpu_resources=(
        GpuResource("nvidia.com/gpu"), GpuResource("amd.com/gpu"),
        GpuResource("nvidia.com/mig-1g.5gb", "mig1g_avail_{n}")))
    k = replace(knode("gpu001"), gpu_capacity={GPU: 2, "amd.com/gpu": 2,
                                               "nvidia.com/mig-1g.5gb": 7},
                gpu_allocatable={GPU: 2, "amd.com/gpu": 2, "nvidia.com/mig-1g.5gb": 7},
                gpu_held={"nvidia.com/mig-1g.5gb": 3})
    p = plan(kview(k), sview(snode("gpu001", features=("gpu",))), policy, Memory(), 0.0)
    assert [c.features for c in p.changes] == [("gpu", "gpu_avail_4", "mig1g_avail_4")]


def test_custom_template_owns_only_its_namespace() -> None:
    policy = replace(NO_HOLDS, gpu_resources=(GpuResource(GPU, "k8s_gpus_{n}"),))
    s = sview(snode("gpu001", features=("gpu", "gpu_avail_8", "k8s_gpus_8")))
    p = plan(kview(knode("gpu001", held=1)), s, policy, Memory(), 0.0)
    assert [c.features for c in p.changes] == [("gpu", "gpu_avail_8", "k8s_gpus_7")]


@pytest.mark.parametrize(
    ("held", "alloc", "hold_before", "want"),
    [(7, 8, 0, 7), (0, 8, 7, 0), (3, 8, 3, None), (0, 7, 0, 1), (12, 8, 0, 8)],
)
def test_hold_jobs_cover_what_kubernetes_uses(
    held: int, alloc: int, hold_before: int, want: int | None
) -> None:
    k = kview(knode("gpu001", alloc=alloc, held=held))
    s = sview(snode("gpu001", hold=hold_before, features=("gpu", f"gpu_avail_{alloc}")))
    p = plan(k, s, replace(Policy(), causes=Causes(gpu_loss=False)), Memory(), 0.0)
    holds = [c.hold_gpus for c in p.changes if c.kind is H]
    assert holds == ([] if want is None else [want])


# --- drain causes --------------------------------------------------------------------------

NOEXEC = Taint("node.kubernetes.io/unreachable", "NoExecute")


@pytest.mark.parametrize(
    ("node", "cause_flag", "reason_part"),
    [
        (knode("gpu001", gone=True), "gone", "k8s node deleted"),
        (knode("gpu001", cordoned=True), "cordoned", "k8s node cordoned"),
        (knode("gpu001", taints=[NOEXEC]), "taints", "k8s taint node.kubernetes.io/unreachable"),
        (knode("gpu001", alloc=7), "gpu_loss", "k8s GPU loss nvidia.com/gpu 7/8"),
        (None, "no_kubernetes_node", "no k8s node"),
    ],
)
def test_each_cause_drains_and_can_be_switched_off(
    node: object, cause_flag: str, reason_part: str
) -> None:
    from syncd.core.model import KubeNode

    k = kview(node) if isinstance(node, KubeNode) else kview()
    s = sview(snode("gpu001", features=("gpu", "gpu_avail_7" if "loss" in reason_part
                                        else "gpu_avail_8")))
    on = replace(NO_HOLDS, causes=replace(Causes(), **{cause_flag: True}))
    p = plan(k, s, on, Memory(), 0.0)
    drains = [c for c in p.changes if c.kind is D]
    assert len(drains) == 1
    assert drains[0].reason.startswith(f"syncd: {reason_part} #")
    assert is_syncd_reason(NO_HOLDS, "gpu001", drains[0].reason)

    off = replace(NO_HOLDS, causes=replace(Causes(), **{cause_flag: False}))
    assert D not in kinds(plan(k, s, off, Memory(), 0.0), "gpu001")


@pytest.mark.parametrize(
    "taint",
    [Taint("node.kubernetes.io/unreachable", "NoSchedule"), Taint("example.com/x", "NoExecute")],
)
def test_taints_drain_only_when_noexecute_and_listed(taint: Taint) -> None:
    p = plan(kview(knode("gpu001", taints=[taint])), sview(snode("gpu001")), NO_HOLDS,
             Memory(), 0.0)
    assert p.changes == ()


def test_notready_drains_only_after_drain_after() -> None:
    run = Run(kview(knode("gpu001", ready=False)), sview(snode("gpu001")), NO_HOLDS)
    assert run.step(100.0).changes == ()
    assert run.step(129.9).changes == ()
    p = run.step(130.0)
    assert kinds(p, "gpu001") == [D]
    assert "NotReady" in p.changes[0].reason


def test_notready_timer_restarts_when_node_recovers_in_between() -> None:
    run = Run(kview(knode("gpu001", ready=False)), sview(snode("gpu001")), NO_HOLDS)
    run.step(0.0)
    run.set_k8s(knode("gpu001"))
    run.step(20.0)
    run.set_k8s(knode("gpu001", ready=False))
    assert run.step(40.0).changes == ()
    assert run.step(69.0).changes == ()
    assert kinds(run.step(70.0), "gpu001") == [D]


# --- resume and ownership ------------------------------------------------------------------


def test_resume_after_every_cause_gone_for_resume_after() -> None:
    run = Run(kview(knode("gpu001", cordoned=True)), sview(snode("gpu001")), NO_HOLDS)
    assert kinds(run.step(0.0), "gpu001") == [D]
    run.set_k8s(knode("gpu001"))
    assert run.step(10.0).changes == ()  # clear timer starts
    assert run.step(69.0).changes == ()
    p = run.step(70.0)
    assert kinds(p, "gpu001") == [R]
    assert "60s" in p.changes[0].why
    assert not run.slurm.nodes["gpu001"].drained


def test_resume_waits_while_another_cause_remains_or_builds() -> None:
    run = Run(kview(knode("gpu001", cordoned=True)), sview(snode("gpu001")), NO_HOLDS)
    run.step(0.0)
    run.set_k8s(knode("gpu001", ready=False))  # cordon lifted, but NotReady (pending)
    assert run.step(10.0).changes == ()
    assert run.step(35.0).changes == ()  # NotReady is now a full cause
    run.set_k8s(knode("gpu001"))
    assert run.step(40.0).changes == ()
    assert kinds(run.step(100.0), "gpu001") == [R]


OPERATOR_REASONS = [
    ({"DRAIN"}, "maintenance: replacing PSU"),
    ({"DRAIN"}, "syncd: k8s node cordoned"),  # looks like ours, no token: forged
    ({"NOT_RESPONDING"}, "Not responding"),
    ({"DRAIN", "NOT_RESPONDING"}, "Not responding"),
    ({"FAIL"}, "bad DIMM"),
]


@pytest.mark.parametrize(("flags", "reason"), OPERATOR_REASONS)
def test_someone_elses_drain_is_never_resumed_or_rewritten(flags: set[str], reason: str) -> None:
    state = BaseState.DOWN if "NOT_RESPONDING" in flags else BaseState.IDLE
    s = sview(snode("gpu001", flags=flags, reason=reason, state=state))
    for k in (kview(knode("gpu001")), kview(knode("gpu001", cordoned=True))):
        run = Run(k, s, NO_HOLDS)
        for t in (0.0, 100.0, 1000.0, 10_000.0):
            p = run.step(t)
            assert all(c.kind not in (D, R) for c in p.changes), (flags, reason, p.changes)
        assert run.slurm.nodes["gpu001"].reason == reason


def test_a_syncd_drain_whose_reason_an_operator_edited_is_no_longer_syncds() -> None:
    run = Run(kview(knode("gpu001", cordoned=True)), sview(snode("gpu001")), NO_HOLDS)
    run.step(0.0)
    ours = run.slurm.nodes["gpu001"].reason
    run.set_slurm(replace(run.slurm.nodes["gpu001"], reason=ours + " (keep: bad fan)"))
    run.set_k8s(knode("gpu001"))
    for t in (10.0, 100.0, 1000.0):
        assert run.step(t).changes == ()
    assert run.slurm.nodes["gpu001"].drained


def test_ownership_survives_a_lost_ledger_but_not_an_edit_or_another_key() -> None:
    policy = NO_HOLDS
    reason = make_reason(policy, "gpu001", "k8s node cordoned")
    assert is_syncd_reason(policy, "gpu001", reason)
    assert not is_syncd_reason(policy, "gpu001", reason.replace("cordoned", "Cordoned"))
    assert not is_syncd_reason(replace(policy, ownership_key="other"), "gpu001", reason)
    # A fresh memory (restarted syncd, empty state dir) still resumes its own drain.
    s = sview(snode("gpu001", flags={"DRAIN"}, reason=reason))
    run = Run(kview(knode("gpu001")), s, policy)
    run.step(0.0)
    assert kinds(run.step(60.0), "gpu001") == [R]


def test_a_stale_reason_on_a_node_that_is_not_drained_means_nothing() -> None:
    # Slurm 25.11 keeps the reason after RESUME (docs/facts/pyslurm.md §4): only DRAIN counts.
    reason = make_reason(NO_HOLDS, "gpu001", "k8s node cordoned")
    s = sview(snode("gpu001", reason=reason))
    assert plan(kview(knode("gpu001")), s, NO_HOLDS, Memory(), 0.0).changes == ()


def test_resume_is_not_sent_to_a_node_slurm_considers_not_responding() -> None:
    run = Run(kview(knode("gpu001", cordoned=True)), sview(snode("gpu001")), NO_HOLDS)
    run.step(0.0)
    node = run.slurm.nodes["gpu001"]
    run.set_slurm(replace(node, flags=node.flags | {"NOT_RESPONDING"}, state=BaseState.DOWN))
    run.set_k8s(knode("gpu001"))
    run.step(1.0)
    assert run.step(500.0).changes == ()


@pytest.mark.parametrize(("state", "reason"), [
    (BaseState.IDLE, "Not responding"),
    (BaseState.MIXED, ""),
    (BaseState.UNKNOWN, ""),  # defined, never registered (the benchmark's ghost nodes)
])
def test_a_node_out_only_because_slurmd_is_silent_is_drained_and_comes_back_drained(
    state: BaseState, reason: str,
) -> None:
    """slurmctld would schedule there again the moment slurmd answers, while Kubernetes still
    says no; drained now, it returns as X+DRAIN and is resumed once Kubernetes recovers."""
    s = snode("gpu001", flags={"NOT_RESPONDING"}, reason=reason, state=state)
    run = Run(kview(knode("gpu001", cordoned=True)), sview(s), NO_HOLDS)
    p = run.step(0.0)
    assert kinds(p, "gpu001") == [D]
    (drift,) = [e for e in p.events if e.type is EventType.DRIFT and e.subject == "gpu001"]
    assert {"kind": "unresponsive"} in drift.data["drift"]  # type: ignore[operator]
    drained = run.slurm.nodes["gpu001"]
    assert is_syncd_reason(NO_HOLDS, "gpu001", drained.reason)
    assert drained.flags == {"DRAIN", "NOT_RESPONDING"}
    run.set_k8s(knode("gpu001"))
    assert run.step(500.0).changes == ()  # still silent: nothing to resume into
    run.set_slurm(replace(drained, flags=frozenset({"DRAIN"}), state=BaseState.IDLE))  # back
    run.step(501.0)
    assert kinds(run.step(600.0), "gpu001") == [R]


@pytest.mark.parametrize(("state", "flags", "reason"), [
    (BaseState.DOWN, {"NOT_RESPONDING"}, "Not responding"),  # ReturnToService's business
    (BaseState.IDLE, {"NOT_RESPONDING"}, "replacing PSU"),  # someone's reason, not slurmctld's
    (BaseState.IDLE, {"NOT_RESPONDING", "FAIL"}, ""),
    (BaseState.FUTURE, {"NOT_RESPONDING"}, ""),
])
def test_an_unresponsive_node_someone_else_holds_is_left_alone(
    state: BaseState, flags: set[str], reason: str,
) -> None:
    s = snode("gpu001", flags=flags, reason=reason, state=state)
    run = Run(kview(knode("gpu001", cordoned=True)), sview(s), NO_HOLDS)
    for t in (0.0, 100.0, 1000.0):
        assert all(c.kind not in (D, R) for c in run.step(t).changes)
    assert run.slurm.nodes["gpu001"].reason == reason


def test_our_drain_on_a_node_that_went_down_and_came_back_is_resumed() -> None:
    """Seen on real Slurm 22.05 (docs/NOTES.md, "Slurm facts"): a node syncd drained whose slurmd
    then stays silent past SlurmdTimeout becomes DOWN+DRAIN and keeps syncd's reason; when
    slurmd returns it stays DOWN+DRAIN (ReturnToService only lifts "Not responding")."""
    run = Run(kview(knode("gpu001", cordoned=True)), sview(snode("gpu001")), NO_HOLDS)
    run.step(0.0)
    ours = run.slurm.nodes["gpu001"]
    run.set_k8s(knode("gpu001"))
    run.set_slurm(replace(ours, state=BaseState.DOWN, flags=ours.flags | {"NOT_RESPONDING"}))
    run.step(1.0)
    assert run.step(500.0).changes == ()  # silent: RESUME would only bounce
    run.set_slurm(replace(ours, state=BaseState.DOWN))  # slurmd is back
    assert kinds(run.step(501.0), "gpu001") == [R]


def test_a_drain_someone_lifted_while_the_cause_remains_is_reapplied() -> None:
    run = Run(kview(knode("gpu001", cordoned=True)), sview(snode("gpu001")), NO_HOLDS)
    run.step(0.0)
    run.set_slurm(snode("gpu001"))  # scontrol update State=RESUME by hand
    assert kinds(run.step(5.0), "gpu001") == [D]


# --- flapping ------------------------------------------------------------------------------


def test_a_flapping_node_stays_drained_with_exponential_backoff() -> None:
    policy = replace(NO_HOLDS, resume_after=10.0, flap=Flap(max_drains=2, window=600.0,
                                                          backoff_base=100.0, backoff_max=1000.0))
    run = Run(kview(knode("gpu001")), sview(snode("gpu001")), policy)
    t = 0.0
    resumes: list[float] = []
    drains: list[str] = []
    for _ in range(12):  # cordoned for 10 s, then healthy for 15 s, for 5 minutes
        run.set_k8s(knode("gpu001", cordoned=True))
        for c in run.step(t).changes:
            if c.kind is D:
                drains.append(c.reason)
        t += 10.0
        run.set_k8s(knode("gpu001"))
        for dt in (0.0, 5.0, 10.0, 14.9):
            for c in run.step(t + dt).changes:
                if c.kind is R:
                    resumes.append(t + dt)
        t += 15.0
    assert drains[0].startswith("syncd: k8s node cordoned")
    assert any(r.startswith("syncd: flapping, k8s node cordoned") for r in drains)
    # After the third drain the node is held for the back-off: few transitions, not 12.
    assert len(resumes) <= 3
    mem = run.memory.node("gpu001")
    assert mem.flap_level >= 1 and mem.flap_until > t - 25
    # It comes back once the back-off has passed and the node stays healthy.
    late = [run.step(t + x) for x in (100.0, 200.0, 1500.0)]
    assert any(kinds(p, "gpu001") == [R] for p in late)


# --- breaker -------------------------------------------------------------------------------


def _cluster(n: int) -> tuple[list[str], Run]:
    names = [f"gpu{i:03d}" for i in range(1, n + 1)]
    run = Run(kview(*(knode(x) for x in names)), sview(*(snode(x) for x in names)), NO_HOLDS)
    return names, run


@pytest.mark.parametrize(("cordoned", "trips"), [(10, False), (11, True)])
def test_breaker_trips_exactly_above_its_threshold(cordoned: int, trips: bool) -> None:
    names, run = _cluster(100)  # 10 % of 100 = 10 nodes
    run.policy = replace(NO_HOLDS, breaker=Breaker(max_drain_percent=10.0))
    run.set_k8s(*(knode(x, cordoned=True) for x in names[:cordoned]))
    p = run.step(0.0)
    drained = [c.node for c in p.changes if c.kind is D]
    assert (drained == []) is trips
    assert (len(p.withheld) == cordoned) is trips
    assert any(e.type is EventType.BREAKER for e in p.events) is trips
    assert run.memory.breaker.open is trips


def test_breaker_counts_drains_across_its_window_and_by_gpus() -> None:
    names, run = _cluster(100)
    run.policy = replace(NO_HOLDS, breaker=Breaker(max_drain_percent=10.0, window=600.0,
                                                   max_drain_gpus=1000))
    run.set_k8s(*(knode(x, cordoned=True) for x in names[:6]))
    assert len([c for c in run.step(0.0).changes if c.kind is D]) == 6
    run.set_k8s(*(knode(x, cordoned=True) for x in names[6:11]))
    p = run.step(100.0)  # 6 + 5 = 11 > 10 within the window
    assert p.withheld and not [c for c in p.changes if c.kind is D]
    gpu_policy = replace(NO_HOLDS, breaker=Breaker(max_drain_percent=100, max_drain_gpus=16))
    _, run2 = _cluster(10)
    run2.policy = gpu_policy
    run2.set_k8s(*(knode(x, cordoned=True) for x in names[:3]))  # 24 GPUs > 16
    assert run2.step(0.0).withheld


def test_open_breaker_still_lets_resumes_and_capacity_through_until_reset() -> None:
    names, run = _cluster(20)
    run.policy = replace(NO_HOLDS, breaker=Breaker(max_drain_percent=10.0))  # 2 nodes
    run.set_k8s(knode(names[0], cordoned=True))
    run.step(0.0)
    run.set_k8s(knode(names[0]), *(knode(x, cordoned=True) for x in names[1:5]),
                knode(names[10], held=2))
    p = run.step(10.0)
    assert run.memory.breaker.open
    assert kinds(p, names[10]) == [F]
    assert not [c for c in p.changes if c.kind is D]
    assert kinds(run.step(100.0), names[0]) == [R]  # resume goes through while open
    assert run.step(5000.0).withheld  # still open much later: a human decides
    run.memory = reset_breaker(run.memory)
    p = run.step(5001.0)
    assert sorted(c.node for c in p.changes if c.kind is D) == names[1:5] or p.withheld
    # 4 drains > limit 2: a reset does not bypass the threshold, it re-evaluates it.
    assert run.memory.breaker.open


def test_breaker_auto_reset() -> None:
    names, run = _cluster(10)
    run.policy = replace(NO_HOLDS, breaker=Breaker(max_drain_percent=10, auto_reset_after=300))
    run.set_k8s(*(knode(x, cordoned=True) for x in names[:3]))
    run.step(0.0)
    assert run.memory.breaker.open
    run.set_k8s(*(knode(x) for x in names[:3]), knode(names[5], cordoned=True))
    run.step(100.0)
    p = run.step(301.0)
    assert any(e.data.get("state") == "closed" for e in p.events)
    assert kinds(p, names[5]) == [D]


def test_stale_kubernetes_view_withholds_drains_but_not_capacity_or_resumes() -> None:
    names, run = _cluster(10)
    run.policy = replace(NO_HOLDS, causes=Causes(no_kubernetes_node=True))
    run.set_k8s(knode(names[0], cordoned=True))
    run.step(0.0)
    run.k8s = replace(kview(knode(names[0]), knode(names[1], held=1)), synced=False)
    p = run.step(100.0)
    assert kinds(p, names[1]) == [F]
    assert {c.node for c in p.withheld} == set(names[2:])  # missing from a partial view
    assert [e.data["state"] for e in p.events if e.type is EventType.BREAKER] == ["stale"]
    assert not run.memory.breaker.open  # stale is not a trip: it clears by itself
    assert kinds(run.step(160.0), names[0]) == [R]
    run.k8s = kview(*(knode(x) for x in names))
    p = run.step(161.0)
    assert [e.data["state"] for e in p.events if e.type is EventType.BREAKER] == ["fresh"]
    assert p.withheld == ()


def test_no_plan_without_a_slurm_view() -> None:
    k, s = kview(knode("gpu001", cordoned=True)), replace(sview(snode("gpu001")), ok=False)
    assert plan(k, s, NO_HOLDS, Memory(), 0.0).changes == ()


# --- batching and events -------------------------------------------------------------------


def test_identical_changes_batch_into_hostlists_of_at_most_batch_size() -> None:
    names, run = _cluster(250)
    run.policy = replace(NO_HOLDS, breaker=Breaker(enabled=False), batch_size=100)
    run.set_k8s(*(knode(x, cordoned=True) for x in names))
    p = run.step(0.0)
    assert [len(a.nodes) for a in p.actions] == [100, 100, 50]  # one reason for one cause
    run.set_k8s(*(knode(x, held=1) for x in names))
    p = plan(run.k8s, run.slurm, run.policy, run.memory, 1.0)
    feats = [a for a in p.actions if a.kind is F]
    assert [len(a.nodes) for a in feats] == [100, 100, 50]
    assert feats[0].hostlist == "gpu[001-100]"
    assert sorted(n for a in feats for n in expand_hostlist(a.hostlist)) == sorted(names)


def test_the_default_batch_drains_1000_nodes_in_4_calls() -> None:
    names, run = _cluster(1000)
    run.policy = replace(NO_HOLDS, breaker=Breaker(enabled=False))
    run.set_k8s(*(knode(x, cordoned=True) for x in names))
    assert [len(a.nodes) for a in run.step(0.0).actions] == [250, 250, 250, 250]


def test_drift_events_are_edge_triggered() -> None:
    k = kview(knode("gpu001", held=2))
    s = sview(snode("gpu001"))
    p1 = plan(k, s, NO_HOLDS, Memory(), 0.0)
    assert [e.subject for e in p1.events if e.type is EventType.DRIFT] == ["gpu001"]
    p2 = plan(k, s, NO_HOLDS, p1.memory, 1.0)  # write failed; still drifting, no new event
    assert [e for e in p2.events if e.type is EventType.DRIFT] == []
    s2 = apply_actions(s, p1.actions)
    p3 = plan(k, s2, NO_HOLDS, p2.memory, 2.0)
    resolved = [e for e in p3.events if e.type is EventType.DRIFT]
    assert len(resolved) == 1 and resolved[0].data["drift"] == []


def test_slurmctld_restart_is_reported_and_features_reasserted() -> None:
    k = kview(knode("gpu001", held=1))
    run = Run(k, sview(snode("gpu001")), NO_HOLDS)
    run.step(0.0)
    assert run.step(1.0).changes == ()
    run.slurm = replace(sview(snode("gpu001", features=("gpu", "gpu_avail_8")),
                              boot="boot-2"))
    p = run.step(2.0)
    assert kinds(p, "gpu001") == [F]
    assert any(e.data.get("drift") == [{"kind": "slurmctld_restarted"}] for e in p.events)


def test_kubernetes_node_without_a_slurm_node_is_reported_once() -> None:
    k = kview(knode("gpu001"), knode("gpu999"))
    s = sview(snode("gpu001"))
    p = plan(k, s, NO_HOLDS, Memory(), 0.0)
    assert [e.data["drift"] for e in p.events if e.subject == "gpu999"] == [
        [{"kind": "no_slurm_node"}]]
    assert plan(k, s, NO_HOLDS, p.memory, 1.0).events == ()


def test_managed_nodes_limits_what_syncd_touches() -> None:
    policy = replace(NO_HOLDS, managed_nodes=r"gpu\d+")
    s = sview(snode("gpu001"), snode("login1", features=("login",)))
    p = plan(kview(knode("gpu001")), s, policy, Memory(), 0.0)
    assert p.changes == ()


# --- manual operations ---------------------------------------------------------------------


def test_manual_drain_is_never_lifted_by_the_planner_only_by_resume() -> None:
    run = Run(kview(knode("gpu001")), sview(snode("gpu001")), NO_HOLDS)
    d = manual.drain(NO_HOLDS, run.slurm, run.memory, "gpu001", "bad fan, ticket 42")
    assert d.change is not None and not d.refused
    run.memory = d.memory
    run.slurm = apply_actions(run.slurm, [_as_action(d.change)])
    for t in (0.0, 100.0, 10_000.0):
        assert run.step(t).changes == ()
    r = manual.resume(NO_HOLDS, run.slurm, run.memory, "gpu001")
    assert r.change is not None and r.change.kind is R


def test_manual_resume_refuses_someone_elses_drain_and_names_them() -> None:
    s = sview(snode("gpu001", flags={"DRAIN"}, reason="PSU swap", reason_user="alice"))
    r = manual.resume(NO_HOLDS, s, Memory(), "gpu001")
    assert r.change is None and "alice" in r.refused and "--force" in r.refused
    forced = manual.resume(NO_HOLDS, s, Memory(), "gpu001", force=True)
    assert forced.change is not None and "alice" in forced.warning


@pytest.mark.parametrize("text", ["x\nState=DOWN", "a;b", "quote'", "x" * 10_000])
def test_manual_drain_refuses_unsafe_reason_text(text: str) -> None:
    d = manual.drain(NO_HOLDS, sview(snode("gpu001")), Memory(), "gpu001", text)
    assert d.change is None and d.refused


def test_manual_drain_refuses_unknown_node_and_foreign_drain() -> None:
    s = sview(snode("gpu001", flags={"DRAIN"}, reason="PSU swap"))
    assert "no such" in manual.drain(NO_HOLDS, s, Memory(), "nope", "x").refused
    assert "will not overwrite" in manual.drain(NO_HOLDS, s, Memory(), "gpu001", "x").refused


def _as_action(change: NodeChange) -> Action:
    return next(batch([change], 100))


def test_the_settled_cache_skips_only_identical_snapshots() -> None:
    k, s = kview(knode("gpu001")), sview(snode("gpu001"))
    p1 = plan(k, s, NO_HOLDS, Memory(), 0.0)
    assert "gpu001" in p1.memory.settled
    # A new snapshot object with a change is always re-evaluated.
    k2 = kview(knode("gpu001", held=3))
    assert kinds(plan(k2, s, NO_HOLDS, p1.memory, 1.0), "gpu001") == [F]
    # A different policy invalidates the whole cache.
    other = replace(NO_HOLDS, gpu_resources=(GpuResource(GPU, "k8s_gpus_{n}"),))
    assert kinds(plan(k, s, other, p1.memory, 1.0), "gpu001") == [F]
    # A node with a running timer is never cached.
    k3 = kview(knode("gpu001", ready=False))
    p3 = plan(k3, s, NO_HOLDS, p1.memory, 2.0)
    assert "gpu001" not in p3.memory.settled
    assert kinds(plan(k3, s, NO_HOLDS, p3.memory, 40.0), "gpu001") == [D]


def test_next_deadline_follows_the_running_timers() -> None:
    from syncd.core.timers import next_deadline

    run = Run(kview(knode("gpu001", ready=False)), sview(snode("gpu001")), NO_HOLDS)
    assert next_deadline(run.memory, NO_HOLDS, 0.0) is None
    run.step(100.0)
    assert next_deadline(run.memory, NO_HOLDS, 100.0) == 130.0
    run.step(130.0)  # drained
    # Still NotReady and already drained: no timer is due any more (no busy loop).
    assert next_deadline(run.memory, NO_HOLDS, 131.0) is None
    run.set_k8s(knode("gpu001"))
    run.step(140.0)
    assert next_deadline(run.memory, NO_HOLDS, 140.0) == 200.0
    run.step(200.0)
    assert next_deadline(run.memory, NO_HOLDS, 200.0) is None


@pytest.mark.parametrize(
    ("flags", "reason", "user", "owner"),
    [
        ({"DRAIN", "NOT_RESPONDING"}, "hands off", "alice", "alice"),
        ({"NOT_RESPONDING"}, "Not responding", "root", "slurmctld (node not responding)"),
        ({"NOT_RESPONDING"}, "", "", "slurmctld (node not responding)"),
        ({"DRAIN"}, "syncd: k8s node cordoned #00000000", "bob", "bob (reason carries syncd's "
         "prefix but was edited or forged)"),
        (set(), "", "", ""),
    ],
)
def test_owner_is_named_by_who_wrote_the_reason(
    flags: set[str], reason: str, user: str, owner: str
) -> None:
    from syncd.core.memory import EMPTY_NODE
    from syncd.core.ownership import owner_of

    s = snode("gpu001", flags=flags, reason=reason, reason_user=user,
              state=BaseState.DOWN if flags == {"NOT_RESPONDING"} else BaseState.IDLE)
    assert owner_of(NO_HOLDS, s, EMPTY_NODE) == owner
