"""The reconcile debounce: one wait for ordinary changes, extended while a storm goes on.

On fake loop time (looptime): the producer and the debounce interleave exactly as scheduled,
whatever else the machine is doing.
"""

from __future__ import annotations

import asyncio

import pytest

from syncd.engine.debounce import settle

pytestmark = pytest.mark.looptime


def _clock() -> float:
    return asyncio.get_running_loop().time()


async def _produce(names: set[str], per_tick: int, tick: float, ticks: int) -> None:
    for t in range(ticks):
        names.update(f"gpu{t:03d}-{i}" for i in range(per_tick))
        await asyncio.sleep(tick)


async def test_a_storm_is_waited_out_as_one_pass() -> None:
    names: set[str] = set()
    producer = asyncio.create_task(_produce(names, per_tick=20, tick=0.01, ticks=20))  # 0.2 s
    waits = await settle(lambda: len(names), debounce=0.05, most=2.0, clock=_clock)
    await producer
    assert waits == 5  # kept waiting while 100+ nodes arrived per interval
    assert len(names) == 400  # and returned only once the storm was over


async def test_ordinary_churn_waits_one_interval() -> None:
    names: set[str] = set()
    producer = asyncio.create_task(_produce(names, per_tick=1, tick=0.05, ticks=10))
    assert await settle(lambda: len(names), debounce=0.05, most=2.0, clock=_clock) == 1
    producer.cancel()


async def test_an_endless_storm_is_cut_at_most() -> None:
    names: set[str] = set()
    producer = asyncio.create_task(_produce(names, per_tick=50, tick=0.005, ticks=10_000))
    waits = await settle(lambda: len(names), debounce=0.05, most=0.3, clock=_clock)
    producer.cancel()
    assert waits == 6, waits  # extended, then cut at 0.3 s / 0.05 s
