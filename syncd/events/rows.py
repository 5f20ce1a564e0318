"""What the spool stores (:class:`SpooledEvent`, :data:`IntentRow`), and the newest events
kept in memory so the delivery lanes rarely read SQLite (:class:`RecentRows`).

The writer commits rows and then adds them here; a lane whose cursor lies inside the window
takes its next batch from memory, without a thread hop or a query. The window holds every
stored row from ``start`` on (holes are simply absent), at most ``capacity`` of them; rows
leave from the front when every sink has them, when the bound drops them, or when the window
is full. A lane behind the window (a sink back from a long outage) reads the spool instead.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from syncd.core.model import EventType

__all__ = ["STATE_TYPES", "IntentRow", "RecentRows", "SpooledEvent"]

#: Event types that carry a node's state (MQTT keeps the newest as the node's retained message).
STATE_TYPES = frozenset({EventType.DRIFT, EventType.ACTION, EventType.ACTION_FAILED})

#: Rows kept at most: enough for several batches of every sink, small in memory (~1 KB each).
CAPACITY = 20_000

#: An intent as stored: key, record (JSON text), created (epoch seconds).
IntentRow = tuple[str, str, float]


@dataclass(frozen=True, slots=True)
class SpooledEvent:
    """One event as stored: ``body`` is the complete CloudEvent JSON text, sent as is."""

    seq: int
    id: str
    type: str
    subject: str
    created: float
    body: str


class RecentRows:
    """Stored rows with ``seq >= start``, ascending; not thread-safe (the spool locks it)."""

    def __init__(self, start: int, capacity: int = CAPACITY) -> None:
        self.start = start
        self._capacity = capacity
        self._rows: list[SpooledEvent] = []
        self._seqs: list[int] = []
        #: subject -> seq of its newest state row (STATE_TYPES) committed since start
        self._newest: dict[str, int] = {}

    def add(self, rows: Sequence[SpooledEvent]) -> None:
        """``rows`` were just committed (ascending, above every row kept)."""
        self._rows += rows
        self._seqs += [r.seq for r in rows]
        newest = self._newest
        for r in rows:
            if r.subject and r.type in STATE_TYPES:
                newest[r.subject] = r.seq
        over = len(self._rows) - self._capacity
        if over > 0:
            self.start = self._seqs[over]
            del self._rows[:over], self._seqs[:over]

    def forget_below(self, first: int) -> None:
        """Rows below ``first`` are gone from the spool."""
        if first <= self.start:
            return
        cut = bisect.bisect_left(self._seqs, first)
        del self._rows[:cut], self._seqs[:cut]
        self.start = first

    def superseded(self, batch: Sequence[SpooledEvent]) -> frozenset[str]:
        """Subjects of ``batch`` with a state row committed after the batch's last row."""
        if not batch:
            return frozenset()
        last, newest = batch[-1].seq, self._newest
        return frozenset(s for s in {r.subject for r in batch}
                         if s and newest.get(s, 0) > last)

    def after(self, seq: int, limit: int) -> list[SpooledEvent] | None:
        """The next ``limit`` rows above ``seq``, or None when some may be older than the window."""
        if seq + 1 < self.start:
            return None
        i = bisect.bisect_right(self._seqs, seq)
        return self._rows[i:i + limit]
