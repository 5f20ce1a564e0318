"""How queued entries become spool transactions, per fsync policy.

``batch`` and ``off`` put everything the writer took into one transaction (group commit: one
fsync for many ``publish()`` calls). ``always`` makes one transaction per event, except that a
settle's events share the transaction that deletes their intent: a crash must leave either
the intent or its outcome, never neither.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from syncd.events.buffer import Entry, SpoolStats
from syncd.events.envelope import encoded
from syncd.events.spool import SpooledEvent

__all__ = ["Transaction", "encode_entry", "plan"]

log = logging.getLogger("syncd.events.outbox")

#: Event ids: a version-4 UUID drawn once per process with its last 48 bits replaced by a
#: counter, so ids stay unique (74 random bits per process) at the cost of one format call
#: instead of an ``os.urandom`` per event.
_ID_PREFIX = str(uuid.uuid4())[:24]
_ID_COUNTER = itertools.count()


def new_id() -> str:
    """A fresh event id, UUID-shaped (``xxxxxxxx-xxxx-4xxx-yxxx-<counter>``)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFF_FFFF_FFFF:012x}"


@dataclass(slots=True)
class Transaction:
    """``rows`` and ``settled`` intents in one commit; ``done`` are the entries it finishes."""

    done: list[Entry] = field(default_factory=list)
    rows: list[SpooledEvent] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)


def encode_entry(entry: Entry, *, source: str, stats: SpoolStats, last: int
                 ) -> list[SpooledEvent]:
    """The entry's CloudEvents not stored yet (above ``last``; an ``always`` entry may be
    half written). Encoded once: a retry sends the same ids. Data that is not JSON is a bug
    upstream: that event is logged, counted and skipped."""
    if entry.rows is None:
        entry.rows = []
        for i, event in enumerate(entry.events):
            seq, event_id = entry.seq + i, new_id()
            when = entry.created if event.occurred_at is None else event.occurred_at
            try:
                body = encoded(event, source=source, sequence=seq, timestamp=when,
                               event_id=event_id)
            except (TypeError, ValueError) as exc:
                stats.unencodable += 1
                log.error("outbox: skipped event %d (%s %s): data is not JSON: %s",
                          seq, event.type, event.subject or "-", exc)
                continue
            entry.rows.append(SpooledEvent(seq, event_id, str(event.type), event.subject,
                                           entry.created, body))
    return [row for row in entry.rows if row.seq > last]


def plan(entries: Sequence[Entry], rows: Sequence[list[SpooledEvent]], *, per_event: bool
         ) -> list[Transaction]:
    """The transactions for ``entries`` (whose rows to store are ``rows``), in order; at
    least one, so intents and cursor moves alone get written too."""
    if not per_event:
        return [Transaction(list(entries), [r for group in rows for r in group],
                            [e.settles for e in entries if e.settles is not None])]
    out: list[Transaction] = []
    for entry, own in zip(entries, rows, strict=True):
        if entry.settles is not None or len(own) <= 1:
            settled = [entry.settles] if entry.settles is not None else []
            out.append(Transaction([entry], list(own), settled))
        else:
            out += [Transaction([], [row]) for row in own[:-1]]
            out.append(Transaction([entry], own[-1:]))
    return out or [Transaction()]
