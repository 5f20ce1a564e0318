"""The benchmark's "applied" clock reads slurmctld's own log: a real slurmctld must log the
updates syncd makes (features only at debug2) in a form bench/slurmlog.py understands."""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.harness import Expect, Sandbox
from bench.runs import applied_clock, debug_level


def test_applied_times_come_from_slurmctlds_log(tmp_path_factory: pytest.TempPathFactory) -> None:
    box = Sandbox.start(tmp_path_factory.mktemp("slurmlog"), 4, 1)
    try:
        names = [f"gpu{i:03d}" for i in range(1, 5)]

        async def run() -> list[Expect]:
            wall0 = time.time()
            items = [Expect(n, "gpu_avail_3", 0.0, wall0=wall0) for n in names[1:]]
            items.append(Expect(names[0], "DRAIN", 0.0, wall0=wall0))
            await asyncio.to_thread(box.scontrol, "update", "NodeName=gpu[002-004]",
                                    "AvailableFeatures=gpu,gpu_avail_3",
                                    "ActiveFeatures=gpu,gpu_avail_3")
            await asyncio.to_thread(box.scontrol, "update", "NodeName=gpu001",
                                    "State=DRAIN", "Reason=bench")
            # a change that never happens stays unstamped
            items.append(Expect(names[1], "gpu_avail_7", 0.0, wall0=wall0))
            return items

        before = debug_level(box)
        items = asyncio.run(applied_clock(box, run))
        stamped = [(e, e.applied_wall) for e in items if e.applied_wall is not None]
        assert [e.node for e, _ in stamped] == [*names[1:], names[0]]
        # read on the right clock (the log's local time): never before the change began (the
        # log truncates to the millisecond), and the drain, sent second, logged no earlier
        assert all(at >= e.wall0 - 0.001 for e, at in stamped), stamped
        assert stamped[-1][1] == max(at for _, at in stamped), stamped
        assert items[-1].applied_wall is None
        # the level goes back afterwards: the rest of the benchmark is unchanged
        assert before == "info" and debug_level(box) == before
    finally:
        box.stop()


def test_the_observer_reads_sinfo_lines_as_it_reads_scontrol_lines() -> None:
    from bench.harness import parse_sinfo, visible

    # recorded from sinfo 22.05.8 (-h -N -n NODE -O NodeList:|,StateComplete:|,features_act:|)
    text = ("gpu001|idle|gpu|\n"
            "gpu05000|down+drain+not_responding|gpu,gpu_avail_0|\n")
    shown = parse_sinfo(text)
    assert visible("DRAIN", shown["gpu05000"]) and visible("gpu_avail_0", shown["gpu05000"])
    assert not visible("DRAIN", shown["gpu001"]) and not visible("gpu_avail_0", shown["gpu001"])
