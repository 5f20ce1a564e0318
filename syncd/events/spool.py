"""The durable local spool: SQLite in WAL mode, one row per event, one cursor per sink.

Why SQLite: appends and cursor moves are transactions, so a SIGKILL at any instant leaves
either the old or the new state, never a torn record; WAL lets a commit be a single
sequential write. The spool keeps the events of ``[first, last]`` (always a contiguous range
of sequence numbers, since rows leave only from the front): an event leaves when every sink
has acknowledged it, or when the bound (count or age) drops it.

Every method takes a lock, so the outbox may call ``publish`` on the event loop while its
delivery loops read and acknowledge from worker threads (``asyncio.to_thread``).

fsync policy (``EventsSettings.fsync``), mapped onto SQLite's ``synchronous`` pragma
(https://www.sqlite.org/pragma.html#pragma_synchronous, WAL section):

- ``off``: ``synchronous=NORMAL``; a commit is a write() into the WAL with no fsync. It
  survives a crash of the process, not of the host: a power loss may lose the last commits
  (never corrupts the file).
- ``batch``: ``synchronous=FULL`` and one transaction per ``append``: one fsync per batch.
- ``always``: ``synchronous=FULL`` and one transaction per event: one fsync per event.

Cursor moves are never fsynced on their own (see :meth:`Spool.ack`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FSYNC_POLICIES", "Spool", "SpooledEvent"]

FSYNC_POLICIES = ("batch", "always", "off")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, type TEXT NOT NULL,"
    " subject TEXT NOT NULL, created REAL NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
)


@dataclass(frozen=True, slots=True)
class SpooledEvent:
    """One event as stored: ``body`` is the complete CloudEvent JSON text, sent as is."""

    seq: int
    id: str
    type: str
    subject: str
    created: float
    body: str


class Spool:
    """Events and per-sink cursors in ``<directory>/outbox.sqlite``."""

    FILENAME = "outbox.sqlite"

    def __init__(self, directory: Path, *, fsync: str, sinks: Sequence[str]) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_POLICIES)}")
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / self.FILENAME
        self._per_event = fsync == "always"
        self._sync = "NORMAL" if fsync == "off" else "FULL"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={self._sync}")
        self._db.execute("PRAGMA busy_timeout=5000")
        for statement in _SCHEMA:
            self._db.execute(statement)
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='events'").fetchone()
        self._last: int = int(row[0]) if row else 0
        row = self._db.execute("SELECT min(seq) FROM events").fetchone()
        self._first: int = int(row[0]) if row and row[0] is not None else self._last + 1
        self._sinks = tuple(sinks)
        self._cursors: dict[str, int] = {}
        stored = dict(self._db.execute("SELECT sink, seq FROM cursors").fetchall())
        for sink in self._sinks:
            # A sink new to this spool starts with whatever the spool still holds.
            self._cursors[sink] = max(int(stored.get(sink, 0)), self._first - 1)

    # -- writing -------------------------------------------------------------------------

    def append(self, build: Callable[[int], Sequence[SpooledEvent]]) -> list[SpooledEvent]:
        """Store the events ``build(next_seq)`` returns (they must number from ``next_seq``)."""
        with self._lock:
            rows = list(build(self._last + 1))
            for i, row in enumerate(rows):
                if row.seq != self._last + 1 + i:
                    raise ValueError("spooled events must be numbered consecutively")
            if not rows:
                return rows
            groups = [[r] for r in rows] if self._per_event else [rows]
            for group in groups:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(
                        "INSERT INTO events (seq, id, type, subject, created, body)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        [(r.seq, r.id, r.type, r.subject, r.created, r.body) for r in group],
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._last = group[-1].seq
            return rows

    def ack(self, sink: str, seq: int) -> None:
        """``sink`` has every event up to ``seq``; drop what every sink now has."""
        with self._lock:
            if seq <= self._cursors[sink]:
                return
            self._cursors[sink] = seq
            floor = min(self._cursors.values())
            # A cursor move needs no fsync of its own: if a power loss undoes it, the sink
            # gets those events again (at-least-once), never fewer. The next append's fsync
            # makes it durable anyway, since WAL commits are ordered.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO cursors (sink, seq) VALUES (?, ?)"
                    " ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq",
                    (sink, seq),
                )
                if floor >= self._first:
                    self._db.execute("DELETE FROM events WHERE seq <= ?", (floor,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._db.execute(f"PRAGMA synchronous={self._sync}")
            self._first = max(self._first, floor + 1)

    def trim(self, *, max_events: int, older_than: float) -> dict[str, int]:
        """Apply the bound: keep at most ``max_events``, none created before ``older_than``.

        Returns, per sink, how many events it had not yet received were dropped (sinks that
        lost nothing are left out); their cursors jump over the dropped range.
        """
        with self._lock:
            cut = self._last - max_events  # drop seq <= cut
            row = self._db.execute(
                "SELECT max(seq) FROM events WHERE created < ?", (older_than,)
            ).fetchone()
            if row and row[0] is not None:
                cut = max(cut, int(row[0]))
            if cut < self._first:
                return {}
            lost = {s: cut - c for s, c in self._cursors.items() if c < cut}
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sink in lost:
                    self._cursors[sink] = cut
                    self._db.execute(
                        "INSERT INTO cursors (sink, seq) VALUES (?, ?)"
                        " ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq",
                        (sink, cut),
                    )
                self._db.execute("DELETE FROM events WHERE seq <= ?", (cut,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._first = cut + 1
            return lost

    # -- reading -------------------------------------------------------------------------

    def read(self, sink: str, limit: int) -> list[SpooledEvent]:
        """The next ``limit`` events ``sink`` has not acknowledged, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, type, subject, created, body FROM events"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (self._cursors[sink], limit),
            ).fetchall()
        return [SpooledEvent(*r) for r in rows]

    def backlog(self) -> dict[str, int]:
        """Events each sink has yet to receive."""
        with self._lock:
            return {s: self._last - c for s, c in self._cursors.items()}

    def cursor(self, sink: str) -> int:
        with self._lock:
            return self._cursors[sink]

    @property
    def last(self) -> int:
        """Sequence number of the newest event ever stored (0 for a new spool)."""
        return self._last

    def __len__(self) -> int:
        return self._last - self._first + 1

    def oldest_created(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT created FROM events WHERE seq = ?", (self._first,))
            found = row.fetchone()
        return float(found[0]) if found else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
