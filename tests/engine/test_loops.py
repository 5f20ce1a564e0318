"""The engine's loops on fake time (looptime): triggers, timers, probe, resync, verify reads,
failures, standby and dry run, through the same assembly the daemon uses.

Time here is the event loop's: ``drain_after`` 30 s and ``resume_after`` 60 s take no real
time, and every assertion about *when* is exact, whatever the machine's load.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from syncd.core.model import EventType, Taint
from tests.engine.rig import POLICY, running
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.looptime


def _drained(rig: object, node: str) -> bool:
    return "DRAIN" in rig.slurm.nodes[node].flags  # type: ignore[attr-defined]


async def test_first_pass_writes_capacity_then_nothing_at_rest(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        await eventually(lambda: len(rig.slurm.applied) == 1, within=1, what="first pass")
        assert rig.slurm.applied[0].features == ("gpu", "gpu_avail_8")
        await asyncio.sleep(600)  # two resyncs and 40 probes later
        assert len(rig.slurm.applied) == 1  # nothing written at rest
        assert rig.slurm.reads >= 40  # the probe reads Slurm every 15 s


async def test_a_change_drains_at_once_and_is_read_back(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        await eventually(lambda: bool(rig.slurm.applied), within=1, what="first pass")
        await asyncio.sleep(20)
        t0 = rig.now()
        rig.kube.set("gpu002", cordoned=True)
        rig.notify("gpu002")
        await eventually(lambda: _drained(rig, "gpu002"), within=1, what="drain")
        assert rig.now() - t0 < 0.2  # debounce 50 ms, no timer involved
        await eventually(lambda: ("gpu002",) in rig.slurm.partial_reads, within=2,
                         what="the verify read of the written node")
        (ev,) = rig.events.actions("drain")
        assert ev.subject == "gpu002" and "k8s node cordoned" in str(ev.data["reason"])


async def test_event_times_are_when_syncd_saw_and_when_slurm_was_written(
    tmp_path: Path,
) -> None:
    """CloudEvents ``time`` is the occurrence: the drift when the pass saw it, the action
    when its Slurm write returned (3 s later here), not when either reached the outbox."""
    async with running(tmp_path) as rig:
        await eventually(lambda: bool(rig.slurm.applied), within=1, what="first pass")
        rig.slurm.write_delay = 3.0
        rig.kube.set("gpu002", cordoned=True)
        rig.notify("gpu002")
        await eventually(lambda: rig.events.actions("drain"), within=5, what="drain event")
        drift = [e for e in rig.events.of(EventType.DRIFT)
                 if e.subject == "gpu002" and e.data.get("drift")][-1]
        (action,) = rig.events.actions("drain")
        assert drift.occurred_at is not None and action.occurred_at is not None
        assert action.occurred_at - drift.occurred_at == pytest.approx(3.0, abs=0.05)
        assert all(e.occurred_at is not None for e in rig.events.events)


async def test_not_ready_drains_after_drain_after_and_resumes_after_resume_after(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as rig:
        await eventually(lambda: bool(rig.slurm.applied), within=1, what="first pass")
        t0 = rig.now()
        rig.kube.set("gpu003", ready=False)
        rig.notify("gpu003")
        await asyncio.sleep(29)
        assert not _drained(rig, "gpu003")  # drain_after is 30 s
        await eventually(lambda: _drained(rig, "gpu003"), within=2, what="timer drain")
        assert 30 <= rig.now() - t0 < 31
        t1 = rig.now()
        rig.kube.set("gpu003", ready=True)
        rig.notify("gpu003")
        await asyncio.sleep(59)
        assert _drained(rig, "gpu003")  # resume_after is 60 s
        await eventually(lambda: not _drained(rig, "gpu003"), within=2, what="timer resume")
        assert 60 <= rig.now() - t1 < 61
        assert [e.subject for e in rig.events.actions("resume")] == ["gpu003"]


async def test_the_probe_repairs_changes_made_in_slurm_and_after_a_restart(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as rig:
        await eventually(lambda: bool(rig.slurm.applied), within=1, what="first pass")
        s = rig.slurm.nodes["gpu001"]
        rig.slurm.nodes["gpu001"] = replace(s, available_features=("gpu",),
                                            active_features=("gpu",))  # removed by hand
        t0 = rig.now()
        await eventually(lambda: "gpu_avail_8" in rig.slurm.nodes["gpu001"].active_features,
                         within=16, what="repair within slurm_probe_every")
        assert rig.now() - t0 <= 15 + 1
        rig.slurm.restart("2026-12-01T01:00:00")
        await eventually(lambda: all("gpu_avail_8" in n.active_features
                                     for n in rig.slurm.nodes.values()),
                         within=16, what="features re-asserted after the restart")
        restarted = [e for e in rig.events.of(EventType.DRIFT)
                     if "slurmctld_restarted" in str(e.data["drift"])]
        assert len(restarted) == 1


async def test_an_outage_shows_in_health_and_recovery_reads_everything(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        await eventually(lambda: rig.engine.reader.health.ok, within=1, what="healthy")
        rig.slurm.down = "scontrol: error: Unable to contact slurm controller (connect failure)"
        await eventually(lambda: not rig.engine.reader.health.ok, within=16, what="outage seen")
        assert "Unable to contact" in rig.engine.model.slurm_error()
        assert rig.engine.model.inputs() is None
        rig.kube.set("gpu004", cordoned=True)
        rig.notify("gpu004")
        await asyncio.sleep(5)
        assert not _drained(rig, "gpu004")
        rig.slurm.down = ""
        await eventually(lambda: _drained(rig, "gpu004"), within=16, what="drain after outage")
        assert rig.engine.reader.health.ok


async def test_a_bug_in_a_pass_is_logged_and_the_loop_goes_on(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        await eventually(lambda: bool(rig.slurm.applied), within=1, what="first pass")
        rig.kube.broken = True
        rig.notify("gpu001")
        failed = rig.metrics.reconciles.labels("failed")
        await eventually(lambda: failed._value.get() == 1, within=1, what="a failed pass")
        rig.kube.broken = False
        rig.kube.set("gpu001", taints=(Taint("node.kubernetes.io/unreachable", "NoExecute"),))
        rig.notify("gpu001")
        await eventually(lambda: _drained(rig, "gpu001"), within=3, what="next pass works")


async def test_nothing_is_planned_before_the_first_complete_list(tmp_path: Path) -> None:
    async with running(tmp_path, start=False) as rig:
        rig.kube.synced = False
        r = rig.engine.reconciler
        assert await r.reconcile("change") is None
        assert rig.slurm.reads == 0 and rig.slurm.applied == []
        assert await r.reconcile("probe") is None
        assert rig.slurm.reads == 1 and rig.engine.reader.health.ok  # health stays honest
        rig.kube.synced = True
        assert await r.reconcile("change") is not None
        rig.kube.synced = False  # a stale view later is planned; its drains are withheld
        rig.kube.set("gpu001", cordoned=True)
        p = await r.reconcile("change")
        assert p is not None and [c.node for c in p.withheld] == ["gpu001"]


async def test_a_standby_plans_but_writes_and_publishes_nothing(tmp_path: Path) -> None:
    async with running(tmp_path, leader=False) as rig:
        rig.kube.set("gpu001", ready=False)
        rig.notify("gpu001")
        await asyncio.sleep(45)
        assert rig.slurm.applied == [] and rig.events.events == []
        m = rig.engine.shared.memory.node("gpu001")
        assert m.not_ready_since is not None  # timers run, ready for a takeover
        rig.leader[0] = True
        rig.notify()
        await eventually(lambda: _drained(rig, "gpu001"), within=1, what="new leader drains")


async def test_dry_run_publishes_and_never_writes(tmp_path: Path) -> None:
    async with running(tmp_path, dry_run=True) as rig:
        rig.kube.set("gpu002", cordoned=True)
        rig.notify("gpu002")
        await eventually(lambda: bool(rig.events.actions("drain")), within=1, what="dry-run drain")
        await asyncio.sleep(120)
        assert rig.slurm.applied == []
        assert all(e.data["outcome"] == "dry_run" for e in rig.events.of(EventType.ACTION))


async def test_a_failed_write_is_an_event_and_is_planned_again(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        await eventually(lambda: bool(rig.slurm.applied), within=1, what="first pass")
        rig.slurm.fail_writes = "slurm_update error: Invalid user id"
        rig.kube.set("gpu001", cordoned=True)
        rig.notify("gpu001")
        await eventually(lambda: bool(rig.events.of(EventType.ACTION_FAILED)), within=2,
                         what="failed event")
        assert "Invalid user id" in str(rig.events.of(EventType.ACTION_FAILED)[0].data["error"])
        rig.slurm.fail_writes = ""
        await eventually(lambda: _drained(rig, "gpu001"), within=16, what="retried")


async def test_a_write_refused_again_while_backing_off_raises_one_event(
        tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        await eventually(lambda: bool(rig.slurm.applied), within=1, what="first pass")
        rig.slurm.fail_writes = "slurm_update error: Invalid node state transition"
        rig.kube.set("gpu001", cordoned=True)
        rig.notify("gpu001")
        # Retried after each back-off (5 s, then 10 s, 20 s: policy.write_backoff).
        await eventually(lambda: rig.engine.shared.memory.node("gpu001").write_failures >= 3,
                         within=60, what="three refusals")
        failed = [e for e in rig.events.of(EventType.ACTION_FAILED) if e.subject == "gpu001"]
        assert len(failed) == 1
        attempts = rig.metrics.registry.get_sample_value(
            "syncd_actions_total", {"kind": "drain", "outcome": "failed"})
        assert attempts is not None and attempts >= 3
        # After a success, a new refusal is news again.
        rig.slurm.fail_writes = ""
        await eventually(lambda: _drained(rig, "gpu001"), within=60, what="drained at last")
        rig.slurm.fail_writes = "slurm_update error: Invalid node state transition"
        rig.kube.set("gpu001", cordoned=False)
        rig.notify("gpu001")
        await eventually(lambda: len([e for e in rig.events.of(EventType.ACTION_FAILED)
                                      if e.subject == "gpu001"]) == 2,
                         within=120, what="the resume's refusal")


async def test_the_breaker_withholds_a_mass_drain(tmp_path: Path) -> None:
    policy = replace(POLICY, breaker=replace(POLICY.breaker, min_nodes=1,
                                             max_drain_percent=25.0))
    async with running(tmp_path, policy=policy) as rig:
        await eventually(lambda: bool(rig.slurm.applied), within=1, what="first pass")
        for n in ("gpu001", "gpu002", "gpu003"):
            rig.kube.set(n, cordoned=True)
        rig.notify("gpu001", "gpu002", "gpu003")
        await eventually(lambda: rig.engine.shared.memory.breaker.open, within=1, what="open")
        assert not any(_drained(rig, n) for n in rig.slurm.nodes)
        assert rig.metrics.withheld._value.get() == 3
        await rig.engine.desk.reset_breaker(who="test")
        reset = [e for e in rig.events.of(EventType.BREAKER) if e.data["state"] == "reset"]
        assert reset and "reset by test" in str(reset[0].data["why"])


async def test_a_lone_cordon_is_drained_without_a_slurm_read_and_confirmed_first(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as rig:
        await eventually(lambda: bool(rig.slurm.applied), within=1, what="first pass")
        reads, partial = rig.slurm.reads, len(rig.slurm.partial_reads)
        t0 = rig.now()
        rig.kube.set("gpu003", cordoned=True)
        rig.notify("gpu003")
        await eventually(lambda: _drained(rig, "gpu003"), within=1, what="drain", every=0.001)
        assert rig.now() - t0 < 0.01  # the 3 ms first look, not the 50 ms step
        assert rig.slurm.mark_reads[-1] == ("gpu003",)
        assert (rig.slurm.reads, len(rig.slurm.partial_reads)) == (reads, partial)


async def test_a_storm_that_begins_slowly_is_still_drained_in_the_fewest_calls(
    tmp_path: Path,
) -> None:
    """The first nodes of a mass event arrive too slowly for the first look (one per 2 ms):
    the pass planned for them sees more nodes change while it confirms its drains, gives
    them up, and the next pass waits for the storm and drains all 120 in 2 calls (batches of
    100), not one call for the first node and two for the rest."""
    names = tuple(f"gpu{i:03d}" for i in range(1, 121))
    policy = replace(POLICY, drain_after=0.0, breaker=replace(POLICY.breaker, enabled=False),
                     batch_size=100)
    async with running(tmp_path, nodes=names, policy=policy) as rig:
        await eventually(lambda: len(rig.slurm.applied) >= 2, within=1, what="first pass")
        rig.slurm.mark_delay = 0.01
        before = len(rig.slurm.applied)
        for n in names:
            rig.kube.set(n, cordoned=True)
            rig.notify(n)
            await asyncio.sleep(0.002)
        await eventually(lambda: all(_drained(rig, n) for n in names), within=5,
                         what="every node drained")
        drains = [a for a in rig.slurm.applied[before:] if a.kind.value == "drain"]
        assert len(drains) == 2, [len(a.nodes) for a in drains]
        assert rig.metrics.storm_deferrals._value.get() == 1
