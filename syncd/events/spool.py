"""The durable local spool: SQLite in WAL mode, one row per event, one cursor per sink, intents.

Why SQLite: appends and cursor moves are transactions, so a SIGKILL at any instant leaves
either the old or the new state, never a torn record; WAL lets a commit be a single
sequential write and lets readers run beside the writer. Rows leave only from the front (an
event leaves when every sink has acknowledged it, or when the bound drops it), so the spool
holds the events of ``[first, last]``, less the *holes*: sequence numbers that were given out
but never stored (events dropped from a full memory buffer while the disk failed).

Threads: every write (``write``, ``append``, ``ack``, ``trim``) comes from the outbox's writer
thread (:mod:`syncd.events.writer`), on its own connection. Delivery lanes read on a second
connection and move cursors in memory only (``move_cursor``); the next ``write`` persists
them. A short lock guards the in-memory state and is never held for I/O.

fsync policy (``EventsSettings.fsync``) as SQLite's ``synchronous`` pragma
(https://www.sqlite.org/pragma.html#pragma_synchronous, WAL section): ``off`` is NORMAL (a
commit is a write() into the WAL: survives a process crash, maybe not a power loss, never
corrupts); ``batch`` is FULL, one fsync per transaction; ``always`` is FULL with one
transaction per event. Transactions that only move cursors are never fsynced (:meth:`write`).
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from syncd.events.rows import IntentRow, RecentRows, SpooledEvent

__all__ = ["FSYNC_POLICIES", "IntentRow", "Spool", "SpooledEvent"]  # rows re-exported

FSYNC_POLICIES = ("batch", "always", "off")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, type TEXT NOT NULL,"
    " subject TEXT NOT NULL, created REAL NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS intents ("
    " key TEXT PRIMARY KEY, record TEXT NOT NULL, created REAL NOT NULL)",
)
_UPSERT_CURSOR = (
    "INSERT INTO cursors (sink, seq) VALUES (?, ?)"
    " ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq"
)
_HOLES = (
    "SELECT seq, nxt FROM (SELECT seq, lead(seq) OVER (ORDER BY seq) AS nxt FROM events)"
    " WHERE nxt > seq + 1"
)


class Spool:
    """Events, per-sink cursors and open intents in ``<directory>/outbox.sqlite``."""

    FILENAME = "outbox.sqlite"

    def __init__(self, directory: Path, *, fsync: str, sinks: Sequence[str]) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_POLICIES)}")
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / self.FILENAME
        self.per_event = fsync == "always"
        self._sync = "NORMAL" if fsync == "off" else "FULL"
        self._state = threading.Lock()
        self._read_lock = threading.Lock()
        self._db = self._connect()
        self._db.execute(f"PRAGMA synchronous={self._sync}")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._reader = self._connect()
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='events'").fetchone()
        self._last: int = int(row[0]) if row else 0
        row = self._db.execute("SELECT min(seq) FROM events").fetchone()
        self._first: int = int(row[0]) if row and row[0] is not None else self._last + 1
        self._holes: list[tuple[int, int]] = [
            (int(s) + 1, int(n) - 1) for s, n in self._db.execute(_HOLES).fetchall()
        ]
        self.sinks = tuple(sinks)
        stored = dict(self._db.execute("SELECT sink, seq FROM cursors").fetchall())
        # A sink new to this spool starts with whatever the spool still holds.
        self._cursors = {s: max(int(stored.get(s, 0)), self._first - 1) for s in self.sinks}
        self._saved = {s: int(stored[s]) if s in stored else -1 for s in self.sinks}
        self._recent = RecentRows(self._last + 1)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=5000")
        return db

    # -- writing (one thread at a time) --------------------------------------------------

    def write(
        self,
        rows: Sequence[SpooledEvent] = (),
        *,
        intents: Sequence[IntentRow] = (),
        settled: Sequence[str] = (),
    ) -> None:
        """One transaction: store ``rows`` (ascending, above :attr:`last`) and ``intents``,
        delete the ``settled`` intents, persist the cursors moved since the last write and
        delete what every sink now has. On error (``sqlite3.Error``/``OSError`` when the disk
        refuses) none of it is stored and the in-memory state is unchanged."""
        seqs = [r.seq for r in rows]
        if seqs and (seqs[0] <= self._last or any(b <= a for a, b in itertools.pairwise(seqs))):
            raise ValueError("spooled events must be numbered upwards, above the last one")
        with self._state:
            dirty = {s: c for s, c in self._cursors.items() if c != self._saved[s]}
            floor = min(self._cursors.values(), default=0)
        cursors_only = not rows and not intents and not settled
        if cursors_only and not dirty:
            return
        db = self._db
        if cursors_only:
            # A cursor move needs no fsync of its own: if a power loss undoes it, the sink
            # gets those events again (at-least-once), never fewer. The next fsynced commit
            # makes it durable anyway, since WAL commits are ordered.
            db.execute("PRAGMA synchronous=NORMAL")
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT INTO events (seq, id, type, subject, created, body) VALUES (?,?,?,?,?,?)",
                [(r.seq, r.id, r.type, r.subject, r.created, r.body) for r in rows],
            )
            db.executemany(
                "INSERT INTO intents (key, record, created) VALUES (?, ?, ?) ON CONFLICT (key)"
                " DO UPDATE SET record = excluded.record, created = excluded.created",
                intents,
            )
            db.executemany("DELETE FROM intents WHERE key = ?", [(k,) for k in settled])
            db.executemany(_UPSERT_CURSOR, dirty.items())
            if floor >= self._first:
                db.execute("DELETE FROM events WHERE seq <= ?", (floor,))
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        finally:
            if cursors_only:
                db.execute(f"PRAGMA synchronous={self._sync}")
        with self._state:
            for seq in seqs:
                if seq > self._last + 1:
                    self._holes.append((self._last + 1, seq - 1))
                self._last = seq
            self._recent.add(rows)
            self._saved.update(dirty)
            self._forget_below(floor + 1)

    def append(self, build: Callable[[int], Sequence[SpooledEvent]]) -> list[SpooledEvent]:
        """Store the events ``build(next_seq)`` returns (they must number from ``next_seq``),
        in one transaction, or one per event under the ``always`` policy."""
        rows = list(build(self._last + 1))
        for i, row in enumerate(rows):
            if row.seq != self._last + 1 + i:
                raise ValueError("spooled events must be numbered consecutively")
        for group in [[r] for r in rows] if self.per_event else [rows] if rows else []:
            self.write(group)
        return rows

    def move_cursor(self, sink: str, seq: int) -> bool:
        """``sink`` has every event up to ``seq`` (memory only; :meth:`write` persists it).
        False when the cursor was there already. Any thread."""
        with self._state:
            if seq <= self._cursors[sink]:
                return False
            self._cursors[sink] = seq
            return True

    def ack(self, sink: str, seq: int) -> None:
        """``sink`` has every event up to ``seq``; drop what every sink now has."""
        if self.move_cursor(sink, seq):
            self.write()

    def trim(self, *, max_events: int, older_than: float) -> dict[str, int]:
        """Apply the bound: keep at most ``max_events``, none created before ``older_than``.

        Returns, per sink, how many events it had not yet received were dropped (sinks that
        lost nothing are left out); their cursors jump over the dropped range.
        """
        cut = self._last - max_events  # drop seq <= cut
        row = self._db.execute(
            "SELECT max(seq) FROM events WHERE created < ?", (older_than,)
        ).fetchone()
        if row and row[0] is not None:
            cut = max(cut, int(row[0]))
        if cut < self._first:
            return {}
        with self._state:
            lost = {s: self._rows(c, cut) for s, c in self._cursors.items() if c < cut}
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(_UPSERT_CURSOR, [(s, cut) for s in lost])
            db.execute("DELETE FROM events WHERE seq <= ?", (cut,))
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        with self._state:
            for sink in lost:
                self._cursors[sink] = max(self._cursors[sink], cut)
                self._saved[sink] = cut
            self._forget_below(cut + 1)
        return {s: n for s, n in lost.items() if n > 0}

    def _forget_below(self, first: int) -> None:
        """Rows below ``first`` are gone (caller holds the state lock)."""
        self._recent.forget_below(first)
        if first > self._first:
            self._first = first
            self._holes = [h for h in self._holes if h[1] >= first]

    def _rows(self, after: int, upto: int) -> int:
        """Rows stored with ``after < seq <= upto`` (``after >= first - 1``; state lock held)."""
        if upto <= after:
            return 0
        missing = sum(max(0, min(hi, upto) - max(lo, after + 1) + 1) for lo, hi in self._holes)
        return upto - after - missing

    # -- reading (any thread) ------------------------------------------------------------

    def recent(self, sink: str, limit: int) -> list[SpooledEvent] | None:
        """Like :meth:`read`, from memory without I/O; None when the spool must be read."""
        with self._state:
            return self._recent.after(self._cursors[sink], limit)

    def superseded(self, batch: Sequence[SpooledEvent]) -> frozenset[str]:
        with self._state:  # subjects of ``batch`` with a newer event committed since start
            return self._recent.superseded(batch)

    def read(self, sink: str, limit: int) -> list[SpooledEvent]:
        """The next ``limit`` events ``sink`` has not acknowledged, oldest first."""
        with self._state:
            after = self._cursors[sink]
            recent = self._recent.after(after, limit)
        if recent is not None:
            return recent
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT seq, id, type, subject, created, body FROM events"
                " WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)).fetchall()
        return [SpooledEvent(*r) for r in rows]

    def open_intents(self) -> list[IntentRow]:
        """Every intent stored and not settled, oldest first."""
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT key, record, created FROM intents ORDER BY created, key").fetchall()
        return [(str(k), str(r), float(c)) for k, r, c in rows]

    def backlog(self) -> dict[str, int]:
        """Events each sink has yet to receive."""
        with self._state:
            return {s: self._rows(c, self._last) for s, c in self._cursors.items()}

    def pending(self, sink: str, upto: int) -> int:
        """Events up to ``upto`` that ``sink`` has yet to receive."""
        with self._state:
            return self._rows(self._cursors[sink], min(upto, self._last))

    def cursor(self, sink: str) -> int:
        return self._cursors[sink]

    def saved(self, sink: str) -> int:
        """The cursor of ``sink`` as last committed (-1 before the first time)."""
        with self._state:
            return self._saved[sink]

    @property
    def last(self) -> int:
        """Sequence number of the newest event ever stored (0 for a new spool)."""
        return self._last

    def __len__(self) -> int:
        with self._state:
            return self._rows(self._first - 1, self._last)

    def oldest_created(self) -> float | None:
        with self._read_lock:
            found = self._reader.execute(
                "SELECT created FROM events WHERE seq >= ? ORDER BY seq LIMIT 1", (self._first,)
            ).fetchone()
        return float(found[0]) if found else None

    def close(self) -> None:
        with self._read_lock:
            self._reader.close()
        self._db.close()


def _rollback(db: sqlite3.Connection) -> None:
    """SQLite has rolled back by itself on SQLITE_FULL and some I/O errors."""
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
