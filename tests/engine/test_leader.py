"""Leader election on fake time against an in-process LeaseStore (tests/fixtures/fakes.py);
the Kubernetes adapter's Lease calls are tested against the simulator in tests/kube/."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from syncd.core.ports import LeaseRecord
from syncd.engine.leader import AlwaysLeader, LeaderElector
from tests.fixtures.fakes import MemoryLeases
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.looptime


def _elector(store: MemoryLeases, name: str, changes: list[tuple[str, bool]]) -> LeaderElector:
    return LeaderElector(store, identity=name, lease_duration=15.0, renew_every=5.0,
                         on_change=lambda leading: changes.append((name, leading)))


async def test_one_leader_takeover_after_expiry_and_release() -> None:
    store = MemoryLeases()
    changes: list[tuple[str, bool]] = []
    a, b = _elector(store, "a", changes), _elector(store, "b", changes)
    ta = asyncio.create_task(a.run())
    await eventually(a.is_leader, within=1, what="a leads")
    tb = asyncio.create_task(b.run())
    await asyncio.sleep(60)
    assert a.is_leader() and not b.is_leader() and b.holder == "a"
    ta.cancel()  # a dies without releasing: b waits out the lease
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await eventually(b.is_leader, within=30, what="b takes over")
    # the last renew was 4.5-5.5 s before t0, and b polls every ~2.5 s
    assert 9 <= loop.time() - t0 <= 15 + 3
    assert store.lease is not None and store.lease.transitions == 1
    await b.release()
    assert not b.is_leader() and store.lease.holder == ""
    c = _elector(store, "c", changes)
    await c.try_once()
    assert c.is_leader()  # a released lease is taken at once
    tb.cancel()
    await asyncio.gather(ta, tb, return_exceptions=True)
    assert ("a", True) in changes and ("b", True) in changes


async def test_a_leader_cut_off_stops_leading_before_anyone_can_take_over() -> None:
    store = MemoryLeases()
    changes: list[tuple[str, bool]] = []
    a = _elector(store, "a", changes)
    task = asyncio.create_task(a.run())
    await eventually(a.is_leader, within=1, what="a leads")
    store.down = True
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await eventually(lambda: not a.is_leader(), within=20, what="a steps down")
    assert loop.time() - t0 <= 15  # by its own last renew, never later
    await eventually(lambda: changes[-1] == ("a", False), within=12, what="announced")
    store.down = False
    await eventually(a.is_leader, within=10, what="a leads again")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class _Racy(MemoryLeases):
    """Another replica renews between our read and our write."""

    async def get(self) -> LeaseRecord | None:
        rec = await super().get()
        if rec is not None and self.lease is not None:
            self.version += 1
            self.lease = replace(self.lease, revision=str(self.version))
        return rec


async def test_a_write_over_a_moved_lease_loses() -> None:
    store = _Racy()
    a = _elector(store, "a", [])
    await a.try_once()  # created: no read-then-write race on create
    assert a.is_leader()
    await asyncio.sleep(20)  # a's lease expired by its own clock...
    b = _elector(store, "b", [])
    await b.try_once()  # ...but b's write goes over a version that moved on
    assert not b.is_leader() and store.lease is not None and store.lease.holder == "a"
    single = AlwaysLeader()
    assert single.is_leader() and single.holder == "single"
    await single.release()
