"""The reconcile debounce: one short wait for ordinary changes, extended while a storm goes on.

On fake loop time (looptime): the producer and the debounce interleave exactly as scheduled,
whatever else the machine is doing.
"""

from __future__ import annotations

import asyncio

import pytest

from syncd.engine.debounce import FIRST_LOOK, settle

pytestmark = pytest.mark.looptime


def _clock() -> float:
    return asyncio.get_running_loop().time()


async def _produce(names: set[str], per_tick: int, tick: float, ticks: int) -> None:
    for t in range(ticks):
        names.update(f"gpu{t:03d}-{i}" for i in range(per_tick))
        await asyncio.sleep(tick)


async def test_a_storm_is_waited_out_as_one_pass() -> None:
    names: set[str] = set()
    # 2,000 nodes/s for 0.2 s: a mass event
    producer = asyncio.create_task(_produce(names, per_tick=20, tick=0.01, ticks=20))
    waits = await settle(lambda: len(names), step=0.005, most=2.0, clock=_clock)
    await producer
    assert waits >= 40  # kept waiting while nodes arrived
    assert len(names) == 400  # and returned only once the storm was over


async def test_a_lone_change_waits_one_step() -> None:
    names = {"gpu001"}
    assert await settle(lambda: len(names), step=0.005, most=2.0, clock=_clock) == 1


async def test_ordinary_churn_waits_one_step() -> None:
    names: set[str] = set()
    producer = asyncio.create_task(_produce(names, per_tick=1, tick=0.05, ticks=10))
    assert await settle(lambda: len(names), step=0.005, most=2.0, clock=_clock) == 1
    producer.cancel()


async def test_an_endless_storm_is_cut_at_most() -> None:
    names: set[str] = set()
    producer = asyncio.create_task(_produce(names, per_tick=50, tick=0.005, ticks=10_000))
    waits = await settle(lambda: len(names), step=0.005, most=0.3, clock=_clock)
    producer.cancel()
    assert waits == 60, waits  # 0.3 s / 5 ms


async def test_a_lone_change_is_planned_after_the_first_look_not_a_full_step() -> None:
    names = {"gpu001"}
    t0 = _clock()
    assert await settle(lambda: len(names), step=0.05, most=0.5, clock=_clock) == 1
    assert _clock() - t0 == pytest.approx(FIRST_LOOK)


async def test_a_storm_seen_in_the_first_look_is_waited_out_in_full_steps() -> None:
    names: set[str] = set()
    # 2,000 nodes/s for 0.2 s: 6 nodes within the first 3 ms look
    producer = asyncio.create_task(_produce(names, per_tick=2, tick=0.001, ticks=200))
    waits = await settle(lambda: len(names), step=0.05, most=2.0, clock=_clock)
    await producer
    assert waits >= 4 and len(names) == 400


async def test_a_lull_inside_a_storm_does_not_end_it() -> None:
    names: set[str] = set()

    async def bursts() -> None:
        await _produce(names, per_tick=10, tick=0.01, ticks=20)  # 1,000 nodes/s for 0.2 s
        await asyncio.sleep(0.25)  # the API server pauses
        names.update(f"late-{i}" for i in range(200))

    producer = asyncio.create_task(bursts())
    await settle(lambda: len(names), step=0.05, most=2.0, clock=_clock)
    assert len(names) == 400  # the pass comes after both bursts
    await producer


async def test_a_backlog_that_built_up_during_a_pass_counts_as_a_storm() -> None:
    """60 nodes arrived over the 80 ms before the wait (while a pass ran): a storm, even if
    none arrives during the first look."""
    now = _clock()
    history = [(now - 0.08, 0), (now - 0.04, 30), (now - 0.001, 60)]
    assert await settle(lambda: 60, step=0.05, most=2.0, clock=_clock, history=history) > 1


async def test_one_earlier_change_is_no_storm() -> None:
    now = _clock()
    assert await settle(lambda: 2, step=0.05, most=2.0, clock=_clock,
                        history=[(now - 0.05, 1), (now - 0.001, 2)]) == 1
