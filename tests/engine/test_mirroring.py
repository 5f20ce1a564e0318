"""The mirror (policy.mirror) in the engine, on fake time (looptime) with in-process ports: an
operator's drain reaches the Kubernetes node at the next probe and leaves with the resume, a
mark is written once (not again while the watch lags, not at rest), failures back off, a
conflict is retried on the next pass, and a standby or a dry run writes nothing."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from syncd.core.mirror import AVAILABLE
from syncd.core.model import EventType, NodeCondition, Taint
from syncd.core.policy import Mirror
from syncd.events.envelope import encode, envelope, source_uri
from syncd.events.schemas import validate_event
from tests.engine.rig import POLICY, Rig, running
from tests.fixtures.fakes import MemoryMarker
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.looptime

MIRROR = replace(POLICY, mirror=Mirror(enabled=True, taint=True))
KEY = "syncd.io/slurm-unavailable"
PROBE = 15.0  # the rig's daemon.slurm_probe_every


def _marker(rig: Rig) -> MemoryMarker:
    assert rig.marker is not None
    return rig.marker


def _marked(rig: Rig, node: str) -> bool:
    k = rig.kube.nodes[node]
    return k.mirror is not None and k.mirror[0] == "True" and k.mirror_taint


def _resume(rig: Rig, node: str) -> None:
    s = rig.slurm.nodes[node]
    rig.slurm.nodes[node] = replace(s, flags=s.flags - {"DRAIN"}, reason="", reason_user="")


def _mirrored(rig: Rig) -> list[dict[str, object]]:
    return [dict(e.data) for e in rig.events.of(EventType.MIRRORED)]


async def test_an_operators_drain_is_mirrored_at_the_next_probe_and_cleared(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, policy=MIRROR) as rig:
        marker = _marker(rig)
        rig.kube.set("gpu004", taints=(Taint("nvidia.com/gpu", "NoSchedule"),))
        await eventually(lambda: bool(rig.slurm.applied), within=1, what="first pass")
        assert marker.writes == []  # nothing out of service: nothing to mirror
        t0 = rig.now()
        rig.slurm.operator_drain("gpu004", "fan replacement")
        await eventually(lambda: _marked(rig, "gpu004"), within=PROBE + 1, what="marked")
        assert rig.now() - t0 <= PROBE + 0.1  # Slurm is read by the probe
        k = rig.kube.nodes["gpu004"]
        assert k.mirror == ("True", "SlurmDrain", "admin: fan replacement")
        assert {t.key for t in k.taints} == {"nvidia.com/gpu", KEY}  # the other taint stays
        assert rig.metrics.mirrored._value.get() == 1
        (ev,) = _mirrored(rig)
        assert ev["outcome"] == "ok" and ev["state"] == "unavailable"
        validate_event(json.loads(encode(envelope(rig.events.of(EventType.MIRRORED)[0],
                                                  source=source_uri("c", "i"), sequence=1,
                                                  timestamp=rig.now()))))
        # At rest nothing is written again, probe after probe.
        await asyncio.sleep(10 * PROBE)
        assert len(marker.writes) == 2 and len(_mirrored(rig)) == 1
        # The operator resumes it: condition False, the taint gone, the other taint kept.
        _resume(rig, "gpu004")
        await eventually(lambda: rig.kube.nodes["gpu004"].mirror == AVAILABLE
                         and not rig.kube.nodes["gpu004"].mirror_taint,
                         within=PROBE + 1, what="cleared")
        assert [t.key for t in rig.kube.nodes["gpu004"].taints] == ["nvidia.com/gpu"]
        assert rig.metrics.mirrored._value.get() == 0
        await asyncio.sleep(5 * PROBE)
        assert len(marker.writes) == 4  # condition and taint, each once per flip
        assert not any(a.kind.value in ("drain", "resume", "down") for a in rig.slurm.applied)


async def test_syncds_own_drain_is_not_mirrored(tmp_path: Path) -> None:
    async with running(tmp_path, policy=MIRROR) as rig:
        await eventually(lambda: bool(rig.slurm.applied), within=1, what="first pass")
        rig.kube.set("gpu002", cordoned=True)
        rig.notify("gpu002")
        await eventually(lambda: "DRAIN" in rig.slurm.nodes["gpu002"].flags, within=1,
                         what="syncd drains")
        await asyncio.sleep(3 * PROBE)
        assert _marker(rig).writes == [] and _mirrored(rig) == []


async def test_a_lagging_watch_does_not_double_a_write(tmp_path: Path) -> None:
    async with running(tmp_path, policy=MIRROR) as rig:
        marker = _marker(rig)
        marker.visible = False  # the watch has not shown our write yet
        await eventually(lambda: bool(rig.slurm.applied), within=1, what="first pass")
        rig.slurm.operator_drain("gpu001", "x")
        await eventually(lambda: len(marker.writes) == 2, within=PROBE + 1, what="written")
        for _ in range(8):  # passes every second, for other nodes' changes
            await asyncio.sleep(1)
            rig.notify("gpu003")
        assert len(marker.writes) == 2


async def test_failed_writes_back_off_and_a_conflict_retries_on_the_next_pass(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, policy=MIRROR) as rig:
        marker = _marker(rig)
        marker.fail = 'HTTP 403 nodes "gpu001" is forbidden: cannot patch resource "nodes/status"'
        await eventually(lambda: bool(rig.slurm.applied), within=1, what="first pass")
        rig.slurm.operator_drain("gpu001", "x")
        await eventually(lambda: marker.attempts == 1, within=PROBE + 1, what="first attempt")
        for _ in range(40):  # passes every second for 40 s
            await asyncio.sleep(1)
            rig.notify("gpu003")
        # write_backoff 5 s doubling: attempts at 0, 5, 15, 35 s, not 40 of them.
        assert marker.attempts == 4
        failed = [e for e in _mirrored(rig) if e["outcome"] == "failed"]
        assert len(failed) == 4 and "forbidden" in str(failed[0]["error"])
        marker.fail = ""  # RBAC fixed: written at the first pass after the back-off (40 s)
        marker.conflicts = 1
        await eventually(lambda: any(e["outcome"] == "conflict" for e in _mirrored(rig)),
                         within=60, what="a conflict")
        rig.notify("gpu003")  # the next pass, as the watch event of the other write brings
        await eventually(lambda: _marked(rig, "gpu001"), within=2, what="retried at once")


async def test_a_standby_and_a_dry_run_write_nothing(tmp_path: Path) -> None:
    async with running(tmp_path / "standby", policy=MIRROR, leader=False) as rig:
        rig.slurm.operator_drain("gpu001", "x")
        await asyncio.sleep(3 * PROBE)
        assert _marker(rig).attempts == 0 and _mirrored(rig) == []
    async with running(tmp_path / "dry", policy=MIRROR, dry_run=True) as rig:
        rig.slurm.operator_drain("gpu001", "x")
        await eventually(lambda: bool(_mirrored(rig)), within=PROBE + 1, what="reported")
        await asyncio.sleep(5 * PROBE)
        (ev,) = _mirrored(rig)  # reported once, not at every pass
        assert ev["outcome"] == "dry_run" and _marker(rig).attempts == 0


def test_a_write_the_watch_showed_only_in_part_counts_as_sent() -> None:
    """The condition and the taint are two requests; a pass between their watch events sees
    the condition and not the taint, and must not write the taint (and an event) again."""
    from syncd.engine.mirroring import _covered

    cond = NodeCondition("SlurmNodeUnavailable", "True", "SlurmDrain", "drained")
    assert _covered((None, True), (cond, True))  # the taint is the part still in flight
    assert _covered((cond, True), (cond, True))
    assert not _covered((None, False), (cond, True))  # a resume since: a new write
    assert not _covered((cond, None), (None, True))
