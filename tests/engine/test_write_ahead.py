"""Write-ahead events on fake time: the intent is stored before each Slurm write and settled
with its outcome events after it; a spool that cannot be written either lets writes go on
(events wait in memory) or holds them (``on_spool_failure: hold``); intents a crash left open
are resolved against Slurm at the first pass, with the time of the write they stand for."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from syncd.core.model import Action, ActionKind, EventType, KubeView, SlurmView
from syncd.core.recovery import intent_record
from syncd.core.reporting import action_events
from tests.engine.rig import running
from tests.fixtures.fakes import MemoryWal
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.looptime


def _drained(rig: object, node: str) -> bool:
    return "DRAIN" in rig.slurm.nodes[node].flags  # type: ignore[attr-defined]


async def test_each_write_is_intended_before_and_settled_after(tmp_path: Path) -> None:
    wal = MemoryWal()
    async with running(tmp_path, wal=wal) as rig:
        await eventually(lambda: len(rig.slurm.applied) == 1, within=1, what="first pass")
        wal.slurm = rig.slurm
        rig.kube.set("gpu002", cordoned=True)
        rig.notify("gpu002")
        await eventually(lambda: _drained(rig, "gpu002"), within=1, what="drain")
        await eventually(lambda: any(e.data["action"] == "drain" for e in wal.events()),
                         within=1, what="the drain settled")
        assert wal.writes_before_intent == [1]  # stored while the drain was not written yet
        assert wal.intents == {}
        (drain,) = [e for e in wal.events() if e.data["action"] == "drain"]
        assert drain.subject == "gpu002" and drain.data["outcome"] == "ok"
        assert drain.occurred_at is not None
        # Spooled with its intent, so not published a second time.
        assert rig.events.actions("drain") == []
        assert rig.engine.reconciler.publisher.history.of("gpu002")  # but kept for `why`


async def test_a_failing_spool_lets_writes_go_on_by_default(tmp_path: Path) -> None:
    wal = MemoryWal()
    async with running(tmp_path, wal=wal) as rig:
        await eventually(lambda: len(rig.slurm.applied) == 1, within=1, what="first pass")
        wal.failing = True
        rig.kube.set("gpu003", cordoned=True)
        rig.notify("gpu003")
        await eventually(lambda: _drained(rig, "gpu003"), within=1, what="drained anyway")
        await eventually(lambda: rig.events.actions("drain"), within=1,
                         what="its event, waiting in memory for the spool")
        assert rig.events.actions("drain")[0].data["outcome"] == "ok"
        assert wal.intents == {}


async def test_hold_writes_nothing_while_the_spool_fails_then_catches_up(tmp_path: Path) -> None:
    wal = MemoryWal()
    async with running(tmp_path, wal=wal) as rig:
        await eventually(lambda: len(rig.slurm.applied) == 1, within=1, what="first pass")
        wal.failing = wal.hold = True
        rig.kube.set("gpu004", cordoned=True)
        rig.notify("gpu004")
        await eventually(lambda: rig.events.actions("drain"), within=1, what="a held drain")
        assert rig.events.actions("drain")[0].data["outcome"] == "held"
        assert not _drained(rig, "gpu004") and len(rig.slurm.applied) == 1
        wal.failing = wal.hold = False
        rig.notify("gpu004")
        await eventually(lambda: _drained(rig, "gpu004"), within=20,
                         what="drained once the spool works")
        assert any(e.data["action"] == "drain" and e.data["outcome"] == "ok"
                   for e in wal.events())


async def test_intents_a_crash_left_open_are_resolved_at_the_first_pass(tmp_path: Path) -> None:
    wal = MemoryWal()
    made = Action(ActionKind.DRAIN, "gpu003", ("gpu003",), reason="syncd: k8s node cordoned #1")
    lost = Action(ActionKind.DRAIN, "gpu004", ("gpu004",), reason="syncd: k8s node cordoned #2")
    for key, action, at in (("k-made", made, 1000.0), ("k-lost", lost, 1001.0)):
        planned = action_events(action, outcome="ok", error="", why={}, k8s=KubeView({}),
                                slurm=SlurmView({}), actor="planner")
        wal.now = at
        await wal.intend(key, intent_record(action, planned))
    async with running(tmp_path, wal=wal, start=False) as rig:
        # The crashed run's first write reached Slurm; the second did not.
        s = rig.slurm.nodes["gpu003"]
        rig.slurm.nodes["gpu003"] = replace(s, flags=s.flags | {"DRAIN"}, reason=made.reason)
        await rig.engine.reconciler.reconcile("probe")
        assert wal.intents == {}
        outcomes = {e.subject: e for e in wal.events()
                    if e.type is EventType.ACTION and e.data["action"] == "drain"}
        assert outcomes["gpu003"].data["outcome"] == "recovered"
        assert outcomes["gpu003"].occurred_at == 1000.0  # when the write was intended
        assert outcomes["gpu004"].data["outcome"] == "not_applied"
        assert outcomes["gpu004"].occurred_at is not None
        assert outcomes["gpu004"].occurred_at > 1001.0  # observed now
        await rig.engine.reconciler.reconcile("probe")
        assert len([e for e in wal.events() if e.data.get("outcome") == "recovered"]) == 1
