"""The envelope, the schemas and the spool, without brokers."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from syncd.core.model import DriftEvent, EventType
from syncd.events import EventInvalid, Spool, SpooledEvent, event_problems, validate_event
from syncd.events.envelope import encode, envelope, node_removed, source_uri
from syncd.events.schemas import schema_names
from tests.events.helpers import every_type


def wrap(event: DriftEvent, seq: int = 1) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(encode(envelope(
        event, source=source_uri("prod a", "syncd-0"), sequence=seq, timestamp=1.5)))
    return body


def test_every_type_has_a_schema_and_valid_events_pass() -> None:
    assert {f"{t}.json" for t in EventType} <= set(schema_names())
    for event in [*every_type("gpu-01"), node_removed("gpu-01", "gone")]:
        validate_event(wrap(event))


def test_envelope_fields() -> None:
    body = wrap(every_type("gpu-01")[0], seq=42)
    assert body["specversion"] == "1.0"
    assert body["source"] == "syncd://prod%20a/syncd-0"
    assert body["sequence"] == "00000000000000000042"
    assert body["time"] == "1970-01-01T00:00:01.500Z"
    assert body["subject"] == "gpu-01"
    assert "subject" not in wrap(DriftEvent(EventType.BREAKER, "",
                                            {"state": "open", "why": "", "withheld": []}))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["data"].update(extra=1), "data: Additional properties"),
        (lambda d: d["data"].pop("why"), "data: 'why' is a required property"),
        (lambda d: d["data"]["slurm"].update(gres_gpus="8"), "data.slurm.gres_gpus"),
        (lambda d: d["data"]["kubernetes"]["gpu_held"].update(x=-1), "data.kubernetes.gpu_held.x"),
        (lambda d: d["data"]["drift"].append({"kind": "x", "more": 1}), "data.drift.1"),
        (lambda d: d.update(sequence="7"), "sequence:"),
        (lambda d: d.update(subject=""), "subject:"),
        (lambda d: d.update(type="io.syncd.other.v1"), "type:"),
    ],
)
def test_schemas_are_strict(change: Any, problem: str) -> None:
    body = wrap(every_type("gpu-01")[0])
    change(body)
    with pytest.raises(EventInvalid) as caught:
        validate_event(body)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_action_enums_are_checked() -> None:
    body = wrap(every_type("gpu-01")[2])
    body["data"]["outcome"] = "maybe"
    body["data"]["actor"] = "cron"
    assert [p.split(":")[0] for p in event_problems(body)] == ["data.actor", "data.outcome"]


def rows(first: int, count: int, created: float = 0.0) -> list[SpooledEvent]:
    return [SpooledEvent(first + i, f"id{first + i}", "t", "", created, "{}")
            for i in range(count)]


def test_spool_cursors_prune_and_survive_reopening(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync="batch", sinks=["a", "b"])
    spool.append(lambda first: rows(first, 5))
    assert [e.seq for e in spool.read("a", 3)] == [1, 2, 3]
    spool.ack("a", 5)
    spool.ack("b", 2)
    assert spool.backlog() == {"a": 0, "b": 3}
    assert len(spool) == 3
    spool.ack("b", 5)
    assert len(spool) == 0
    spool.close()
    again = Spool(tmp_path, fsync="off", sinks=["a", "b", "c"])
    assert again.backlog() == {"a": 0, "b": 0, "c": 0}
    assert [e.seq for e in again.append(lambda first: rows(first, 2))] == [6, 7]
    again.close()


def test_spool_trim_reports_what_each_sink_lost(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync="off", sinks=["fast", "slow"])
    spool.append(lambda first: rows(first, 10, created=100.0))
    spool.ack("fast", 10)
    assert spool.trim(max_events=4, older_than=0.0) == {"slow": 6}
    assert [e.seq for e in spool.read("slow", 100)] == [7, 8, 9, 10]
    assert spool.trim(max_events=100, older_than=101.0) == {"slow": 4}
    assert spool.read("slow", 100) == []
    spool.close()


@pytest.mark.parametrize(("policy", "level"), [("off", 1), ("batch", 2), ("always", 2)])
def test_fsync_policy_sets_sqlite_synchronous(tmp_path: Path, policy: str, level: int) -> None:
    spool = Spool(tmp_path, fsync=policy, sinks=["a"])
    spool.append(lambda first: rows(first, 1))
    spool.ack("a", 1)
    assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == level
    assert spool._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    spool.close()
    with pytest.raises(ValueError, match="fsync"):
        Spool(tmp_path, fsync="sometimes", sinks=["a"])
    assert sqlite3.connect(tmp_path / Spool.FILENAME).execute(
        "SELECT count(*) FROM cursors").fetchone() == (1,)
