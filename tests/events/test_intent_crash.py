"""Write-ahead intents survive SIGKILL: after a restart, every intent that was stored is
either still open or its outcome events are in the spool, never neither, never half."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import pytest

from syncd.events import Outbox
from syncd.settings.events import EventsSettings, MqttSink, RedisSink
from tests.events.helpers import reaper
from tests.events.intent_proc import outcome

__all__ = ["reaper"]  # the fixture, used by name

ROOT = Path(__file__).resolve().parents[2]


async def start(reaper: list[asyncio.subprocess.Process], spool: Path, *args: str
                ) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.events.intent_proc", "--spool", str(spool), *args,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    reaper.append(proc)
    return proc


async def read_until(proc: asyncio.subprocess.Process, last: bytes) -> list[bytes]:
    assert proc.stdout is not None
    lines: list[bytes] = []
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line, f"the process ended before printing {last!r}: {lines[-3:]}"
        lines.append(line.strip())
        if lines[-1] == last:
            return lines


async def kill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    assert await proc.wait() == -signal.SIGKILL


def stored_whys(spool: Path) -> list[str]:
    """The ``why`` of every event in the spool, in sequence order (sequences checked)."""
    db = sqlite3.connect(spool / "outbox.sqlite")
    try:
        rows = db.execute("SELECT seq, body FROM events ORDER BY seq").fetchall()
    finally:
        db.close()
    assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1)), "a gap in the spool"
    return [json.loads(body)["data"]["why"] for _, body in rows]


def restart(spool: Path) -> Outbox:
    cfg = EventsSettings(redis=RedisSink(enabled=False), mqtt=MqttSink(enabled=False))
    return Outbox(cfg, cluster="crash", instance="intents", spool_dir=spool, sinks=[])


def check(spool: Path, outbox: Outbox, *, intended: int) -> tuple[set[int], int]:
    """Every key is open XOR settled (both outcomes), keys are handled one after another,
    and keys ``0..intended-1`` (whose intend() returned) are open or settled. Returns the
    open keys and how many keys the run reached."""
    opened = {int(i.key[1:]) for i in outbox.open_intents()}
    whys = Counter(stored_whys(spool))
    settled = {i for i in range(10_000) if whys[f"k{i} outcome 1"]}
    for i in settled:
        assert whys[f"k{i} outcome 1"] == whys[f"k{i} outcome 2"] == 1, f"k{i} half settled"
    assert not opened & settled, f"both open and settled: {sorted(opened & settled)}"
    reached = len(settled | opened)
    assert settled | opened == set(range(reached)), "a key lost both intent and events"
    assert opened <= {reached - 1}, "only the key in progress may be open"
    assert reached >= intended
    for intent in outbox.open_intents():
        assert intent.record == {"action": "drain", "node": f"node{intent.key[1:]}",
                                 "i": int(intent.key[1:])}
        assert intent.created > 0
    return opened, reached


@pytest.mark.parametrize("fsync", ["batch", "always"])
async def test_sigkill_between_intend_and_settle_leaves_the_intent_open(
    tmp_path: Path, fsync: str, reaper: list[asyncio.subprocess.Process]
) -> None:
    spool = tmp_path / "spool"
    proc = await start(reaper, spool, "--fsync", fsync, "--count", "10", "--stop-at", "intended:3")
    lines = await read_until(proc, b"stopped")
    assert lines[-2] == b"intended 3"
    await kill(proc)

    outbox = restart(spool)
    opened, reached = check(spool, outbox, intended=4)
    assert (opened, reached) == ({3}, 4)
    assert "k3 before" in stored_whys(spool)
    # What the engine does at start: resolve the intent against Slurm, then settle it.
    await outbox.settle("k3", [outcome(3, 1), outcome(3, 2)])
    assert outbox.open_intents() == []
    await outbox.aclose(flush_timeout=0.1)
    again = restart(spool)
    assert check(spool, again, intended=4) == (set(), 4)
    await again.aclose(flush_timeout=0.1)


async def test_sigkill_after_settle_leaves_the_events_and_no_intent(
    tmp_path: Path, reaper: list[asyncio.subprocess.Process]
) -> None:
    spool = tmp_path / "spool"
    proc = await start(reaper, spool, "--count", "10", "--stop-at", "settled:3")
    await read_until(proc, b"stopped")
    await kill(proc)
    outbox = restart(spool)
    assert check(spool, outbox, intended=4) == (set(), 4)
    await outbox.aclose(flush_timeout=0.1)


@pytest.mark.parametrize("fsync", ["batch", "always"])
async def test_sigkill_at_random_moments_never_loses_an_intent(
    tmp_path: Path, fsync: str, reaper: list[asyncio.subprocess.Process]
) -> None:
    """Killed flat out wherever it is (mid-transaction included), three times on the same
    spool; after each restart the invariant holds, the open intent is resolved (as the
    engine will) and the next run goes on with the next key."""
    spool = tmp_path / "spool"
    rng = random.Random(int.from_bytes(os.urandom(4)))
    first = 0
    for _round in range(3):
        proc = await start(reaper, spool, "--fsync", fsync, "--start", str(first),
                           "--count", "100000")
        target = first + rng.randrange(20, 200)
        await read_until(proc, f"intended {target}".encode())
        await kill(proc)
        outbox = restart(spool)
        opened, first = check(spool, outbox, intended=target + 1)
        for i in opened:
            await outbox.settle(f"k{i}", [outcome(i, 1), outcome(i, 2)])
        await outbox.aclose(flush_timeout=0.1)
    assert first > 60
