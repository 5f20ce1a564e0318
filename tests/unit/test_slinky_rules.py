"""The planner's rules for sites where Slurm nodes come and go with pods (SchedMD Slinky):
absent counterparts are left alone, the cordon can be slurm-operator's, a shared Kubernetes node
gets no capacity, and Slinky's drains are recognised as Slinky's (docs/slinky.md)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from syncd.config import ConfigError, load
from syncd.core.explain import report
from syncd.core.memory import Memory
from syncd.core.model import ActionKind, EventType, KubeView
from syncd.core.ownership import owner_of
from syncd.core.planner import plan
from syncd.core.policy import Breaker, Capacity, Causes, Policy
from syncd.core.snapshots import slurm_json
from syncd.events.envelope import envelope
from syncd.events.schemas import validate_event
from tests.unit.planner_kit import Run, kinds, knode, kview, snode, sview

D, R, F, H = (ActionKind.DRAIN, ActionKind.RESUME, ActionKind.SET_FEATURES,
              ActionKind.SET_HOLD)
POLICY = Policy(capacity=Capacity(hold_jobs=False), drain_after=0.0, resume_after=60.0)
OPERATOR = replace(POLICY, cordon="slurm-operator")


def _names(n: int) -> list[str]:
    return [f"slinky-{i}" for i in range(n)]


@pytest.mark.parametrize("mapped", [0, 3])
def test_defaults_never_drain_slurm_nodes_nothing_maps_to(mapped: int) -> None:
    """Whatever the mapping finds at start (nothing, or a few nodes), the rest is not drained,
    and a Slurm node that joins later (a NodeSet scaling up) is not drained either: the
    breaker, all-or-nothing per pass, would have let that one through."""
    names = _names(40)
    run = Run(kview(*(knode(n) for n in names[:mapped])), sview(*(snode(n) for n in names)),
              Policy())
    p = run.step(0.0)
    assert not [c for c in (*p.changes, *p.withheld) if c.kind in (D, ActionKind.DOWN)]
    assert not run.memory.breaker.open
    run.set_slurm(snode("slinky-40"))
    p = run.step(10.0)
    assert kinds(p, "slinky-40") == [] and not p.withheld


def test_an_absent_node_keeps_syncds_drain_until_kubernetes_says_it_is_fine() -> None:
    run = Run(kview(knode("slinky-0", ready=False)), sview(snode("slinky-0")), POLICY)
    assert kinds(run.step(0.0), "slinky-0") == [D]
    run.step(1.0)  # observed drained
    run.k8s = kview()  # the slurmd pod went away (moved, rescheduling)
    for t in (100.0, 500.0, 5000.0):
        assert kinds(run.step(t), "slinky-0") == []
    assert "DRAIN" in run.slurm.nodes["slinky-0"].flags
    rep = report("slinky-0", replace(run.k8s, mapping="slurmd pods (x)"), run.slurm, POLICY,
                 run.memory, 5000.0)
    assert rep.owner == "syncd" and not rep.timers, rep
    assert "leaves it as it is" in rep.notes[0] and rep.notes[1] == "name mapping: slurmd pods (x)"
    run.set_k8s(knode("slinky-0"))  # back, on a healthy node
    assert kinds(run.step(5001.0), "slinky-0") == []
    assert kinds(run.step(5061.0), "slinky-0") == [R]  # after resume_after


def test_the_view_note_reaches_why() -> None:
    k8s = KubeView({}, notes={"slinky-3": "slurmd pod slurm/slinky-3 is Pending, not "
                              "scheduled to a node yet"})
    rep = report("slinky-3", k8s, sview(snode("slinky-3")), POLICY, Memory(), 0.0)
    assert rep.causes == () and rep.notes[-1].endswith("not scheduled to a node yet")
    assert rep.to_json()["notes"] == list(rep.notes)


def test_cordon_is_syncds_by_default_both_ways() -> None:
    run = Run(kview(knode("slinky-0", cordoned=True)), sview(snode("slinky-0")), POLICY)
    (d,) = run.step(0.0).changes
    assert d.kind is D and "k8s node cordoned" in d.reason
    run.step(1.0)
    run.set_k8s(knode("slinky-0"))
    run.step(2.0)
    assert kinds(run.step(63.0), "slinky-0") == [R]


def test_cordon_left_to_slurm_operator_both_ways() -> None:
    run = Run(kview(knode("slinky-0", cordoned=True)), sview(snode("slinky-0")), OPERATOR)
    assert kinds(run.step(0.0), "slinky-0") == []  # slurm-operator drains it, not syncd
    # slurm-operator's drain, and its undrain: syncd never touches either.
    run.set_slurm(snode("slinky-0", flags={"DRAIN"}, reason="slurm-operator: Node (n1) was "
                        "cordoned, Pod (slurm/slinky-0) must be cordoned", reason_user="slurm"))
    assert kinds(run.step(10.0), "slinky-0") == []
    rep = report("slinky-0", run.k8s, run.slurm, OPERATOR, run.memory, 10.0)
    assert rep.owner.startswith("slurm-operator (Slinky NodeSet controller")
    assert any("the cordon is slurm-operator's" in n for n in rep.notes)
    run.set_k8s(knode("slinky-0"))  # uncordoned: still slurm-operator's to undrain
    assert kinds(run.step(100.0), "slinky-0") == []
    assert kinds(run.step(1000.0), "slinky-0") == []


def test_with_the_switch_a_cordon_holds_syncds_own_drain() -> None:
    """syncd drained for NotReady; the node is Ready again but cordoned. Resuming now would
    open a cordoned node (slurm-operator leaves a reason that is not its own alone)."""
    run = Run(kview(knode("slinky-0", ready=False, cordoned=True)), sview(snode("slinky-0")),
              OPERATOR)
    (d,) = run.step(0.0).changes
    assert d.kind is D and "NotReady" in d.reason and "cordoned" not in d.reason
    run.step(1.0)
    run.set_k8s(knode("slinky-0", cordoned=True))
    assert kinds(run.step(100.0), "slinky-0") == []
    assert kinds(run.step(1000.0), "slinky-0") == []
    run.set_k8s(knode("slinky-0"))
    assert kinds(run.step(1001.0), "slinky-0") == []
    assert kinds(run.step(1061.0), "slinky-0") == [R]


def test_a_shared_kubernetes_node_drives_state_but_writes_no_capacity() -> None:
    a = replace(knode("slinky-0", held=3), shares_node_with=("slinky-1",))
    b = replace(knode("slinky-1", held=3), slurm_name="slinky-1", shares_node_with=("slinky-0",))
    run = Run(kview(a, b), sview(snode("slinky-0"), snode("slinky-1")),
              replace(Policy(), drain_after=0.0, breaker=Breaker(enabled=False)))
    assert run.step(0.0).changes == ()  # no gpu_avail_5, no holds on either
    run.set_k8s(replace(a, ready=False), replace(b, ready=False))
    p = run.step(1.0)
    assert kinds(p, "slinky-0") == [D] and kinds(p, "slinky-1") == [D]
    rep = report("slinky-0", run.k8s, run.slurm, run.policy, run.memory, 1.0)
    assert any("writes no capacity" in n for n in rep.notes)


@pytest.mark.parametrize(("reason", "tool"), [
    ("slurm-operator: Pod is terminating", "slurm-operator"),
    ("slurm-bridge: preempted for pod ns/p", "slurm-bridge"),
    ("slurm-operatorx: lookalike", ""),
    ("operator: fan", ""),
])
def test_slinky_drains_are_recognised_as_slinkys(reason: str, tool: str) -> None:
    s = snode("slinky-0", flags={"DRAIN"}, reason=reason, reason_user="slurm")
    who = owner_of(POLICY, s, Memory().node("slinky-0"))
    assert who.startswith(tool) if tool else who == "slurm"
    shown = slurm_json(s)
    assert shown is not None and shown.get("reason_owner", "") == tool
    # The drift event carrying it stays valid against the published schema.
    p = plan(kview(knode("slinky-0", ready=False, held=1)), sview(s), POLICY, Memory(), 0.0)
    assert [c.kind for c in p.changes] == [F]  # someone else's drain is never overwritten
    (ev,) = [e for e in p.events if e.type is EventType.DRIFT]
    assert ev.data["slurm"]["reason_owner" if tool else "reason"] == (tool or reason)  # type: ignore[index]
    validate_event(envelope(ev, source="syncd://t/i", sequence=1, timestamp=0.0))


@pytest.mark.parametrize(("raw", "needle"), [
    ({"kubernetes": {"name_mapping": {"mode": "pod"}},
      "policy": {"causes": {"no_kubernetes_node": True}}},
     "policy.causes.no_kubernetes_node: must be false when kubernetes.name_mapping.mode is pod"),
    ({"policy": {"cordon": "kubelet"}}, "policy.cordon: must be one of syncd, slurm-operator"),
    ({"kubernetes": {"name_mapping": {"mode": "pod", "pod_sources": ["labels:x"]}}},
     "kubernetes.name_mapping.pod_sources: 'labels:x' is not one of"),
    ({"kubernetes": {"name_mapping": {"mode": "pod"}, "slurm_pod_selector": ""}},
     "kubernetes.slurm_pod_selector: required when name_mapping.mode is pod"),
])
def test_pod_mode_config_problems(raw: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(raw, env={})
    assert any(needle in p for p in err.value.problems), err.value.problems


def test_pod_mode_defaults_load() -> None:
    s = load({"kubernetes": {"name_mapping": {"mode": "pod"}}, "policy": {"cordon":
              "slurm-operator"}}, env={})
    assert s.kubernetes.name_mapping.pod_sources[0] == (
        "label:nodeset.slinky.slurm.net/pod-hostname")
    assert s.policy.causes == Causes() and not s.policy.causes.no_kubernetes_node
