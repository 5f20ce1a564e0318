"""The outbox: events go to the local spool first, then to every sink on its own schedule.

``publish`` only queues: the spool's one writer thread (:mod:`syncd.events.writer`) commits
the events in order, so neither a reconcile nor the event loop ever waits for a disk or a
broker; ``await durable()`` waits until what was published is in the spool. Each sink has a
delivery lane: read the next batch after its cursor, send it, move the cursor. A lane whose
broker is down retries with exponential back-off (tenacity) and keeps its backlog in the
spool, bounded by ``spool_max_events`` and ``spool_max_age``; when the bound drops events a
lane had not received, an ``io.syncd.outbox.overflow.v1`` event and the ``dropped`` counter
say how many. A cursor moves only after the broker acknowledged the batch, and a lane sends
a batch only once the cursor before the previous one is saved, so a crash re-sends at most
two batches: at-least-once, dedupe on ``id``. The writer saves cursors with every commit, so
a lane rarely waits for that (each wait is two thread hops).

It is also the write-ahead log of Slurm writes (:class:`syncd.core.ports.WriteAheadLog`,
docs/events.md); while the spool cannot be written, ``on_spool_failure`` decides.

Wiring in the daemon::

    outbox = Outbox(settings.events, cluster=..., instance=..., spool_dir=...,
                    sinks=make_sinks(settings.events, client_id=instance))
    task = asyncio.create_task(outbox.run())      # at start; then resolve open_intents()
    outbox.publish(events)                         # per reconcile
    if outbox.writes_allowed():                    # per Slurm write
        await outbox.intend(key, record); ...; await outbox.settle(key, events)
    await outbox.aclose(flush_timeout=5.0)         # at SIGTERM (then await task)
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_exponential, wait_random

from syncd.core.model import DriftEvent
from syncd.core.ports import Intent
from syncd.events.envelope import node_removed, source_uri
from syncd.events.sinkhealth import SinkStats
from syncd.events.sinks import Sink
from syncd.events.spool import Spool
from syncd.events.writer import HOUSEKEEPING_EVERY, SpoolStats, SpoolWriter
from syncd.settings.events import EventsSettings

__all__ = ["Outbox", "SinkStats"]

log = logging.getLogger(__name__)


class Outbox:
    """Implements :class:`syncd.core.ports.EventPublisher` and
    :class:`syncd.core.ports.WriteAheadLog` on top of a :class:`Spool`."""

    def __init__(
        self,
        settings: EventsSettings,
        *,
        cluster: str,
        instance: str,
        spool_dir: Path,
        sinks: Sequence[Sink],
        clock: Callable[[], float] = time.time,
    ) -> None:
        names = [s.name for s in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"sink names must be unique, got {names}")
        self.settings = settings
        self.source = source_uri(cluster, instance)
        self.sinks = tuple(sinks)
        self._clock = clock
        self.spool = Spool(spool_dir, fsync=settings.fsync, sinks=names)
        self._stats = {n: SinkStats() for n in names}
        self._wake = {n: asyncio.Event() for n in names}
        self._progress = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()
        self._running = False
        self._stopped = asyncio.Event()
        self._saving: dict[str, cf.Future[None]] = {}  # per sink: its last cursor's save
        self._sent: dict[str, int] = {}  # per sink: the end of the last batch sent
        self._writer = SpoolWriter(self.spool, settings, source=self.source, clock=clock,
                                   on_commit=self._notify, on_dropped=self._count_dropped)

    # -- EventPublisher ------------------------------------------------------------------

    def publish(self, events: Sequence[DriftEvent]) -> None:
        """Queue ``events`` for the spool (in order) and return: no disk, no broker. The
        events' ``data`` must not change afterwards (it is encoded by the writer)."""
        if events:
            self._writer.enqueue(events, self._clock())

    def remove_node(self, node: str, why: str = "node removed") -> None:
        """Publish that ``node`` is gone: its retained MQTT state is cleared, in order."""
        self.publish([node_removed(node, why)])

    # -- WriteAheadLog -------------------------------------------------------------------

    async def durable(self) -> None:
        """Return once every event published before the call is committed to the spool
        (fsynced under ``batch``/``always``), or was dropped from a full memory buffer (an
        overflow event says so). Raises SpoolUnavailable while the spool cannot be written."""
        self._loop = asyncio.get_running_loop()
        await asyncio.wrap_future(self._writer.durable())

    async def intend(self, key: str, record: Mapping[str, object]) -> None:
        """Durably store the intent ``key`` before its Slurm write (same key: replaced).
        Raises SpoolUnavailable when it could not be committed, ValueError for bad input."""
        text = _record_json(key, record)
        await asyncio.wrap_future(self._writer.intend(key, text, self._clock()))

    async def settle(self, key: str, events: Sequence[DriftEvent]) -> None:
        """Append the outcome ``events`` and delete intent ``key`` in one transaction; an
        unknown key only appends. Raises SpoolUnavailable when the spool fails: the events
        then stay queued (and the intent open) until it can be written."""
        if not key:
            raise ValueError("intent key must be a non-empty string")
        self._loop = asyncio.get_running_loop()
        await asyncio.wrap_future(self._writer.settle(key, events, self._clock()))

    def open_intents(self) -> list[Intent]:
        """Intents stored and not settled, oldest first: at start, those of a crashed run."""
        return [Intent(key, json.loads(record), created)
                for key, record, created in self.spool.open_intents()]

    def writes_allowed(self) -> bool:
        """False while ``on_spool_failure: hold`` holds Slurm writes (the spool fails)."""
        return self.settings.on_spool_failure != "hold" or not self._writer.health.failing

    # -- health and numbers --------------------------------------------------------------

    def health(self) -> tuple[bool, str]:
        """(ok, reason) for /readyz: not ok while the spool cannot be written."""
        return not self._writer.health.failing, self._writer.health.reason()

    def spool_stats(self) -> SpoolStats:
        """A copy of the writer's counters (failures, outages, buffered, dropped, ...)."""
        return dataclasses.replace(self._writer.stats)

    def backlog(self) -> dict[str, int]:
        """Events each sink has yet to receive (in the spool or still in memory)."""
        queued = self._writer.stats.buffered
        return {name: count + queued for name, count in self.spool.backlog().items()}

    def stats(self) -> dict[str, SinkStats]:
        """A copy of the counters per sink (delivered, failed, dropped, healthy)."""
        return {name: dataclasses.replace(stats) for name, stats in self._stats.items()}

    # -- delivery ------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until :meth:`aclose` (or cancellation); closes the sinks on the way out."""
        if self._stopping.is_set():
            return  # closed before it ever ran
        self._loop = asyncio.get_running_loop()
        self._running = True
        self._stopped.clear()
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._lane(sink), name=f"outbox-{sink.name}")
                    for sink in self.sinks
                ]
                await self._stopping.wait()
                for task in tasks:
                    task.cancel()
        finally:
            for sink in self.sinks:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(3.0):
                        await sink.close()
                self._stats[sink.name].healthy = False
            self._running = False
            self._stopped.set()

    async def flush(self, timeout: float) -> bool:  # noqa: ASYNC109 (the port's API)
        """Wait until every sink has every event published so far; False on timeout."""
        self._loop = asyncio.get_running_loop()
        target = self._writer.allocated()

        def caught_up() -> bool:
            return self._writer.settled_upto() >= target and not any(
                self.spool.pending(s.name, target) for s in self.sinks)

        async def wait() -> None:
            while not caught_up():
                self._progress.clear()  # no await between the check and the wait
                await self._progress.wait()

        try:
            async with asyncio.timeout(timeout):
                await wait()
        except TimeoutError:
            return False
        return True

    async def aclose(self, *, flush_timeout: float = 5.0) -> bool:
        """Flush (bounded), stop the lanes, write what is queued, close sinks and spool.
        Returns the flush result; what was not delivered stays in the spool for next time."""
        flushed = await self.flush(flush_timeout)
        self._stopping.set()
        if self._running:
            await self._stopped.wait()
        if await asyncio.to_thread(self._writer.stop, max(flush_timeout, 1.0)):
            self.spool.close()
        return flushed

    # -- internals -----------------------------------------------------------------------

    def _count_dropped(self, sink: str, count: int) -> None:
        self._stats[sink].dropped += count

    def _notify(self) -> None:
        """Something was stored: wake the lanes and flush (called by the writer thread)."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to wake
            for event in [*self._wake.values(), self._progress]:
                loop.call_soon_threadsafe(event.set)

    async def _lane(self, sink: Sink) -> None:
        stats, wake = self._stats[sink.name], self._wake[sink.name]

        def failed(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            stats.attempt_failed(sink.name, state.attempt_number, error)

        backoff = wait_exponential(multiplier=0.05, max=self.settings.retry_max)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=backoff + wait_random(0, 0.1),
            before_sleep=failed,
            reraise=True,
        )
        while True:
            wake.clear()
            sent = 0
            async for attempt in retrying.copy():
                with attempt:
                    sent = await self._deliver_one_batch(sink)
            stats.attempt_worked(sink.name, sent)
            if sent == 0:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel
                # that comes as the event is set (https://github.com/python/cpython/issues/86296),
                # and a lane that ignores its cancel never lets aclose() finish.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(HOUSEKEEPING_EVERY):
                        await wake.wait()

    async def _deliver_one_batch(self, sink: Sink) -> int:
        """Read the next batch after the cursor (re-read on every retry, since the bound may
        have moved the cursor meanwhile), send it, then move the cursor."""
        batch = self.spool.recent(sink.name, self.settings.batch_size)
        if batch is None:  # behind the window kept in memory
            batch = await asyncio.to_thread(self.spool.read, sink.name, self.settings.batch_size)
        if not batch:
            return 0
        await sink.send(batch, self.spool.superseded(batch))
        moved = self.spool.move_cursor(sink.name, batch[-1].seq)
        self._stats[sink.name].delivered += len(batch)
        self._progress.set()
        if moved:
            # The writer saves this cursor while the next batch goes out (with its next
            # events, usually). The next batch waits only if the cursor before this batch
            # is not saved yet, so a crash re-sends at most two batches.
            name = sink.name
            before, self._sent[name] = self._sent.get(name), batch[-1].seq
            previous, self._saving[name] = self._saving.get(name), self._writer.cursors_saved()
            if before is not None and previous is not None and self.spool.saved(name) < before:
                await asyncio.wrap_future(previous)
        return len(batch)


def _record_json(key: str, record: Mapping[str, object]) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError("intent key must be a non-empty string")
    try:
        return json.dumps(dict(record), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"intent {key!r}: record is not JSON-compatible: {exc}") from None
