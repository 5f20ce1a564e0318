"""The shortcuts the outbox takes for speed give what the slow ways give: the envelope text
assembled around ``data``, the window of recent rows against SQLite, the event ids."""

from __future__ import annotations

from pathlib import Path

from syncd.core.model import DriftEvent, EventType
from syncd.events import Spool
from syncd.events.envelope import encode, encoded, envelope, node_removed, source_uri
from syncd.events.rows import RecentRows, SpooledEvent
from syncd.events.transactions import new_id
from tests.events.helpers import every_type


def test_encoded_is_the_text_of_the_envelope() -> None:
    source = source_uri("prod \"a\"", "syncd-0")
    events = [*every_type("gpu-01"), node_removed("gpu-02", "gone"),
              DriftEvent(EventType.DRIFT, 'gpu-"ü"\\', {"why": "naïve \u2028 \"quoted\""})]
    for seq, event in enumerate(events, start=1):
        want = encode(envelope(event, source=source, sequence=seq, timestamp=1.5 + seq,
                               event_id=f"id-{seq}"))
        assert encoded(event, source=source, sequence=seq, timestamp=1.5 + seq,
                       event_id=f"id-{seq}") == want


def test_ids_are_unique_and_uuid_shaped() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 36 and i[14] == "4" and i.count("-") == 4 for i in ids)


def _rows(seqs: list[int]) -> list[SpooledEvent]:
    return [SpooledEvent(s, f"id{s}", "t", "", 0.0, "{}") for s in seqs]


def test_recent_rows_answer_only_inside_the_window() -> None:
    recent = RecentRows(start=1, capacity=5)
    recent.add(_rows([1, 2, 4, 5]))  # 3 is a hole
    assert [r.seq for r in recent.after(0, 10) or []] == [1, 2, 4, 5]
    assert [r.seq for r in recent.after(2, 1) or []] == [4]
    recent.add(_rows([6, 7, 8]))  # over capacity: 1 and 2 leave
    assert recent.start == 4
    assert recent.after(2, 10) is None  # 3 might be stored: read the spool
    assert [r.seq for r in recent.after(3, 10) or []] == [4, 5, 6, 7, 8]
    recent.forget_below(7)
    assert recent.after(5, 10) is None
    assert [r.seq for r in recent.after(6, 10) or []] == [7, 8]
    assert recent.after(8, 10) == []


def test_spool_reads_the_same_from_memory_and_from_sqlite(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync="off", sinks=["a", "b"])
    spool.write(_rows([1, 2, 3]))
    spool.write(_rows([7, 8, 9, 10]))  # 4-6: dropped from memory, never stored
    spool.ack("a", 2)
    from_memory = {s: spool.recent(s, 4) for s in ("a", "b")}
    spool.close()
    again = Spool(tmp_path, fsync="off", sinks=["a", "b"])
    assert again.recent("b", 4) is None  # a new spool has nothing in memory
    for sink in ("a", "b"):
        assert from_memory[sink] == again.read(sink, 4)
    again.close()


def test_a_node_is_superseded_only_by_a_newer_state_event() -> None:
    drift, skipped = str(EventType.DRIFT), str(EventType.SKIP)
    rows = [SpooledEvent(s, f"id{s}", t, n, 0.0, "{}") for s, t, n in (
        (1, drift, "a"), (2, drift, "b"), (3, drift, "c"),  # a batch
        (4, drift, "a"), (5, skipped, "b"), (6, drift, "x"))]  # committed after it
    recent = RecentRows(start=1)
    recent.add(rows)
    assert recent.superseded(rows[:3]) == {"a"}  # b's newer event carries no state
    assert recent.superseded(rows[3:]) == frozenset()
    assert recent.superseded([]) == frozenset()
