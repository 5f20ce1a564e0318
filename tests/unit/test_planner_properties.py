"""Hypothesis properties of the planner over random clusters and histories."""

from __future__ import annotations

import re
from dataclasses import replace

from hostlist import expand_hostlist
from hypothesis import example, given, settings
from hypothesis import strategies as st

from syncd.core.memory import Memory
from syncd.core.model import ActionKind, BaseState, KubeNode, KubeView, SlurmNode, SlurmView
from syncd.core.ownership import make_reason, owns, slurmctld_unresponsive
from syncd.core.planner import Plan, plan
from syncd.core.policy import Breaker, Policy
from tests.unit.planner_kit import Run, apply_actions, knode, snode

POLICY = Policy(breaker=Breaker(max_drain_percent=30.0, max_drain_gpus=10_000))
NAMES = [f"gpu{i:03d}" for i in range(1, 25)]


@st.composite
def kube_nodes(draw: st.DrawFn, name: str) -> KubeNode | None:
    if draw(st.integers(0, 9)) == 0:
        return None
    cap = draw(st.integers(0, 8))
    return knode(
        name,
        ready=draw(st.booleans()),
        cordoned=draw(st.integers(0, 4)) == 0,
        cap=cap,
        alloc=draw(st.integers(0, cap)),
        held=draw(st.integers(0, 12)),
        gone=draw(st.integers(0, 9)) == 0,
    )


@st.composite
def slurm_nodes(draw: st.DrawFn, name: str) -> SlurmNode:
    kind = draw(st.sampled_from(["ok", "ok", "ours", "operator", "noresp", "silent", "edited",
                                 "forged"]))
    ours = make_reason(POLICY, name, "k8s node cordoned")
    flags, reason, state = {
        "ok": (set(), "", BaseState.IDLE),
        "ours": ({"DRAIN"}, ours, BaseState.IDLE),
        "operator": ({"DRAIN"}, "maintenance", BaseState.MIXED),
        "noresp": ({"NOT_RESPONDING"}, "Not responding", BaseState.DOWN),
        "silent": ({"NOT_RESPONDING"}, "Not responding", BaseState.IDLE),
        "edited": ({"DRAIN"}, ours + " edited", BaseState.IDLE),
        "forged": ({"DRAIN"}, "syncd: k8s node cordoned #00000000", BaseState.IDLE),
    }[kind]
    extra = draw(st.lists(st.sampled_from(["ib", "gpu_avail_3", "gpu_avail_8", "nvme"]),
                          unique=True, max_size=3))
    return snode(name, flags=flags, reason=reason, state=state,
                 features=("gpu", *extra), hold=draw(st.integers(0, 8)),
                 gpus=draw(st.sampled_from([0, 8])))


@st.composite
def worlds(draw: st.DrawFn) -> tuple[KubeView, SlurmView, Memory, float]:
    n = draw(st.integers(1, len(NAMES)))
    names = NAMES[:n]
    k = {x: kn for x in names if (kn := draw(kube_nodes(x))) is not None}
    s = {x: draw(slurm_nodes(x)) for x in names}
    synced = draw(st.integers(0, 5)) > 0
    # A memory from an earlier plan, so timers are in a realistic state.
    mem = plan(KubeView(k, synced=synced), SlurmView(s), POLICY, Memory(), 0.0).memory
    now = draw(st.sampled_from([0.0, 10.0, 45.0, 200.0]))
    return KubeView(k, synced=synced), SlurmView(s), mem, now


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_applying_a_plan_then_planning_again_gives_nothing_to_do(
    w: tuple[KubeView, SlurmView, Memory, float],
) -> None:
    k, s, mem, now = w
    p1 = plan(k, s, POLICY, mem, now)
    s2 = apply_actions(s, p1.actions)
    p2 = plan(k, s2, POLICY, p1.memory, now)
    assert p2.actions == (), p2.changes


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_no_action_touches_a_reason_syncd_did_not_write(
    w: tuple[KubeView, SlurmView, Memory, float],
) -> None:
    k, s, mem, now = w
    p = plan(k, s, POLICY, mem, now)
    for c in p.changes:
        node = s.nodes[c.node]
        if c.kind is ActionKind.RESUME:
            assert owns(POLICY, node, mem.node(c.node)), (node, c)
        if c.kind is ActionKind.DRAIN:
            # The one reason syncd replaces is slurmctld's own "Not responding".
            assert not node.unavailable or slurmctld_unresponsive(node), (node, c)


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_usable_gpus_are_never_negative_and_hostlists_expand_to_the_plan(
    w: tuple[KubeView, SlurmView, Memory, float],
) -> None:
    k, s, mem, now = w
    p = plan(k, s, POLICY, mem, now)
    for c in p.changes:
        for f in c.features:
            if m := re.fullmatch(r"gpu_avail_(-?\d+)", f):
                assert int(m.group(1)) >= 0
        assert c.hold_gpus >= 0
    by_kind: dict[ActionKind, list[str]] = {}
    for a in p.actions:
        assert 1 <= len(a.nodes) <= POLICY.batch_size
        assert expand_hostlist(a.hostlist) == list(a.nodes)
        by_kind.setdefault(a.kind, []).extend(a.nodes)
    for kind, nodes in by_kind.items():
        assert sorted(nodes) == sorted(c.node for c in p.changes if c.kind is kind)


@settings(max_examples=60, deadline=None)
@example(  # found by hypothesis: an auto-reset used to forget the window's drains
    cordon_rounds=[["gpu005"], ["gpu001", "gpu002", "gpu003", "gpu004"], [], [], [], [],
                   ["gpu001", "gpu002"], ["gpu003", "gpu004"]], step=12.0, limit=4)
@given(
    st.lists(st.lists(st.sampled_from(NAMES), max_size=12), min_size=1, max_size=30),
    st.floats(5.0, 30.0),
    st.integers(1, 6),
)
def test_the_breaker_bound_is_never_exceeded(
    cordon_rounds: list[list[str]], step: float, limit: int
) -> None:
    window = 120.0
    policy = replace(POLICY, resume_after=5.0, breaker=Breaker(
        max_drain_percent=100.0 * limit / len(NAMES), min_nodes=0, window=window,
        max_drain_gpus=10_000, auto_reset_after=60.0))
    run = Run(KubeView({n: knode(n) for n in NAMES}),
              SlurmView({n: snode(n) for n in NAMES}), policy)
    drained_at: list[tuple[float, str]] = []
    t = 0.0
    for cordoned in cordon_rounds:
        run.set_k8s(*(knode(n, cordoned=n in cordoned) for n in NAMES))
        for c in run.step(t).changes:
            if c.kind is ActionKind.DRAIN:
                drained_at.append((t, c.node))
        in_window = {n for when, n in drained_at if t - when < window}
        assert len(in_window) <= limit
        t += step


@settings(max_examples=100, deadline=None)
@given(st.lists(st.booleans(), min_size=10, max_size=200), st.floats(1.0, 20.0))
def test_a_flapping_nodes_transitions_are_bounded(flips: list[bool], step: float) -> None:
    policy = replace(POLICY, resume_after=step)
    run = Run(KubeView({"gpu001": knode("gpu001")}), SlurmView({"gpu001": snode("gpu001")}),
              policy)
    resumes: list[float] = []
    t = 0.0
    for cordoned in flips:
        run.set_k8s(knode("gpu001", cordoned=cordoned))
        for c in run.step(t).changes:
            if c.kind is ActionKind.RESUME:
                resumes.append(t)
        t += step
    # Within any flap window there can be at most max_drains drains before the back-off,
    # and the back-off at least doubles: resumes grow like log(time), never like the flips.
    window = policy.flap.window
    for when in resumes:
        assert len([r for r in resumes if when <= r < when + window]) <= policy.flap.max_drains + 1


@settings(max_examples=300, deadline=None)
@given(worlds(), st.data())
def test_an_incremental_plan_is_the_full_plan(
    w: tuple[KubeView, SlurmView, Memory, float], data: st.DataObject,
) -> None:
    """Planning only the nodes that changed (plus the unsettled ones) decides exactly what
    planning every node decides: the same writes, withheld drains, events and memory."""
    k, s, _mem, now = w
    base = plan(k, s, POLICY, Memory(), now)
    changed = data.draw(st.sets(st.sampled_from(sorted(s.nodes))))
    k2 = dict(k.nodes)
    s2 = dict(s.nodes)
    for name in changed:
        if data.draw(st.booleans()):
            kn = data.draw(kube_nodes(name))
            if kn is None:
                k2.pop(name, None)
            else:
                k2[name] = kn
        else:
            s2[name] = data.draw(slurm_nodes(name))
    later = now + data.draw(st.sampled_from([0.0, 5.0, 40.0, 100.0]))
    k2v, s2v = KubeView(k2, synced=k.synced), SlurmView(s2)
    full = plan(k2v, s2v, POLICY, base.memory, later)
    part = plan(k2v, s2v, POLICY, base.memory, later, only=changed)

    def events(p: Plan) -> list[str]:
        return sorted(f"{e.type} {e.subject} {e.data}" for e in p.events)

    assert part.changes == full.changes
    assert part.withheld == full.withheld
    assert part.actions == full.actions
    assert events(part) == events(full)
    assert dict(part.memory.nodes) == dict(full.memory.nodes)
    assert part.memory.breaker == full.memory.breaker
    assert (part.memory.watch, part.memory.drifted, part.memory.managed_count) == (
        full.memory.watch, full.memory.drifted, full.memory.managed_count)
    assert dict(part.memory.settled) == dict(full.memory.settled)
