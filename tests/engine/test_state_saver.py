"""The memory is saved off the reconcile lock, coalesced, and survives a restart."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from syncd.core.memory import Memory, NodeMemory
from syncd.engine.state import StateSaver, StateStore
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.looptime


async def test_a_burst_of_saves_is_one_or_two_writes_and_the_newest_wins(tmp_path: Path) -> None:
    saver = StateSaver(StateStore(tmp_path))
    task = asyncio.create_task(saver.run())
    memories = [replace(Memory(), nodes={"gpu001": NodeMemory(flap_level=i)}) for i in range(50)]
    for m in memories:
        saver.save(m)
    await eventually(lambda: saver.writes >= 1, within=5, what="a write")
    await saver.flush()
    assert saver.writes <= 2
    assert StateStore(tmp_path).load().node("gpu001").flap_level == 49
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_an_unreadable_state_file_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "memory.json").write_text("{not json")
    assert StateStore(tmp_path).load() == Memory()
    blocked = tmp_path / "file"
    blocked.write_text("")
    await StateStore(blocked).save(Memory())  # a state dir that is a file: logged, no crash


async def test_saves_under_churn_are_at_most_one_a_second_and_flush_is_at_once(
    tmp_path: Path,
) -> None:
    saver = StateSaver(StateStore(tmp_path))
    task = asyncio.create_task(saver.run())
    for i in range(100):  # a pass with changes every 50 ms for 5 s
        saver.save(replace(Memory(), nodes={"gpu001": NodeMemory(flap_level=i)}))
        await asyncio.sleep(0.05)
    assert 4 <= saver.writes <= 6, saver.writes
    saver.save(replace(Memory(), nodes={"gpu001": NodeMemory(flap_level=500)}))
    await saver.flush()  # an operator request: written now, not a second later
    assert StateStore(tmp_path).load().node("gpu001").flap_level == 500
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
