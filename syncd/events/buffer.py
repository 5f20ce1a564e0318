"""The events between ``publish()`` and the spool: numbered, in order, bounded in memory.

Sequence numbers are given here, at ``publish()``, so the order consumers see is the order of
the calls. Normally the queue holds what the writer has not committed yet (microseconds to
milliseconds) and is not bounded: a burst waits for the disk, as the synchronous publish()
of old did (``await durable()`` is the back-pressure). While the spool cannot be written
(``limited``) it is the memory buffer of ``on_spool_failure``, bounded by ``memory_buffer``.
Beyond the bound the *newest* events are dropped, a settle's all or none (its events and the
intent deletion share one transaction). Dropped events keep their sequence numbers, so the
drops form one contiguous :class:`Gap` per outage, which consumers see as a jump and which
is announced, once something fits again, by overflow notices queued over the bound.

Not thread-safe by itself: the writer guards it with its condition (every method here is
called with that lock held).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from syncd.core.model import DriftEvent
from syncd.events.overflow import Gap
from syncd.events.spool import SpooledEvent

__all__ = ["Entry", "EventQueue", "SpoolStats", "complete"]

log = logging.getLogger("syncd.events.outbox")


def complete(future: cf.Future[None], error: BaseException | None = None) -> None:
    """Complete ``future`` (from any thread) unless its waiter gave up: an awaiting task that
    is cancelled cancels it, and setting a cancelled future raises."""
    with contextlib.suppress(cf.InvalidStateError):
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


@dataclass(slots=True)
class SpoolStats:
    """The writer's counters and gauges since this process started, for metrics."""

    failing: bool = False  # the last write attempt failed
    failing_since: float | None = None  # epoch seconds the current failure started
    last_error: str = ""
    failures: int = 0  # failed write attempts
    outages: int = 0  # times the spool started failing
    buffered: int = 0  # events queued in memory, not yet in the spool
    written: int = 0  # events committed to the spool
    dropped: int = 0  # events dropped because the memory buffer was full
    unencodable: int = 0  # events skipped because their data is not JSON (a bug upstream)


@dataclass(slots=True, eq=False)
class Entry:
    """Events queued by one call, numbered from ``seq``; ``n`` orders entries."""

    n: int
    seq: int
    events: tuple[DriftEvent, ...]
    created: float
    settles: str | None = None  # the intent deleted in the same transaction
    notice: bool = False  # an overflow notice: over every bound, and never trims by count
    rows: list[SpooledEvent] | None = None  # encoded once, kept across retries


class EventQueue:
    """Numbered entries waiting for the spool, and who waits for them."""

    def __init__(
        self,
        *,
        next_seq: int,
        capacity: int,
        stats: SpoolStats,
        notices: Callable[[Gap], list[DriftEvent]],
        clock: Callable[[], float],
    ) -> None:
        self._entries: deque[Entry] = deque()
        self._next_seq = next_seq
        self._count = 0  # entries ever queued (``Entry.n``)
        self._capacity = capacity
        self._stats = stats
        self._notices, self._clock = notices, clock
        self._gap: Gap | None = None
        self._waiters: list[tuple[int, cf.Future[None]]] = []
        self.limited = False  # see limit()
        self._warned = False

    def limit(self, on: bool) -> None:
        """While the spool fails (``on``), ``capacity`` bounds the queue; one warning each time."""
        self.limited = on
        if not on:
            self._warned = False

    def __bool__(self) -> bool:
        return bool(self._entries)

    def admit(self, events: Sequence[DriftEvent], created: float, settles: str | None = None,
              *, notice: bool = False) -> Entry | None:
        """Queue what fits (a settle whole or not at all); number the rest and drop it.
        Returns the entry queued, None when nothing was."""
        bounded = self.limited and not notice
        room = self._capacity - self._stats.buffered if bounded else len(events)
        take = min(len(events), max(room, 0))
        if settles is not None and take < len(events):
            take = 0
        entry = None
        if take or (settles is not None and not events):
            self.close_gap()
            self._count += 1
            entry = Entry(self._count, self._next_seq, tuple(events[:take]), created, settles,
                          notice=notice)
            self._entries.append(entry)
            self._next_seq += take
            self._stats.buffered += take
        if take < len(events):
            first, count = self._next_seq, len(events) - take
            self._next_seq += count
            self._stats.dropped += count
            if self._gap is None:
                self._gap = Gap(first, first + count - 1, created, created)
                if not self._warned:
                    self._warned = True
                    log.warning("outbox: memory buffer full (%d events) while the spool "
                                "fails; dropping new events until there is room",
                                self._capacity)
            else:
                self._gap = Gap(self._gap.first, first + count - 1, self._gap.first_time,
                                created)
        return entry

    def close_gap(self) -> None:
        """Queue the overflow notices of the current gap, if there is one."""
        gap, self._gap = self._gap, None
        if gap is not None:
            self.admit(self._notices(gap), self._clock(), notice=True)

    def take(self, limit: int) -> list[Entry]:
        """The oldest entries, whole, holding about ``limit`` events (at least one entry)."""
        out: list[Entry] = []
        size = 0
        for entry in self._entries:
            if out and size + len(entry.events) > limit:
                break
            out.append(entry)
            size += len(entry.events)
        return out

    def committed(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            assert self._entries[0] is entry, "entries commit in queue order"
            self._entries.popleft()
            self._stats.buffered -= len(entry.events)

    def allocated(self) -> int:
        """The last sequence number given out."""
        return self._next_seq - 1

    def settled_upto(self) -> int:
        """Every sequence number up to this one is in the spool or was dropped."""
        return self._entries[0].seq - 1 if self._entries else self._next_seq - 1

    # -- waiters -------------------------------------------------------------------------

    def done(self) -> bool:
        """Everything queued so far is stored."""
        return not self._entries

    def wait_all(self, future: cf.Future[None]) -> None:
        """``future`` completes once everything queued so far is stored."""
        self.wait_for(self._count, future)

    def wait_for(self, n: int, future: cf.Future[None]) -> None:
        self._waiters.append((n, future))

    def resolve(self) -> None:
        """Complete the waiters whose entries are stored; an empty queue closes the gap."""
        stored = self._entries[0].n - 1 if self._entries else self._count
        keep = []
        for n, future in self._waiters:
            if n <= stored:
                complete(future)
            else:
                keep.append((n, future))
        self._waiters = keep
        if not self._entries:
            self.close_gap()

    def fail_waiters(self, error: BaseException) -> None:
        for _, future in self._waiters:
            complete(future, error)
        self._waiters = []
