"""``syncd events tail`` as a real subprocess against the real Redis."""

from __future__ import annotations

import asyncio
import getpass
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from syncd.events import Outbox, make_sinks
from tests.events.helpers import every_type, numbered, settings
from tests.fixtures.brokers import Addr, free_port

ROOT = Path(__file__).resolve().parents[2]


def tail(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd.cli.main", "events", "tail", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )


def filled() -> int:
    """How many events fill() sends."""
    return 2 * len(every_type("x")) + 5


async def fill(redis: Addr, stream: str, spool: Path) -> None:
    cfg = settings(redis_url=redis.redis_url, stream=stream)
    outbox = Outbox(cfg, cluster="c", instance="i", spool_dir=spool, sinks=make_sinks(cfg))
    task = asyncio.create_task(outbox.run())
    outbox.publish(every_type("gpu-07") + numbered(5) + every_type("gpu-08"))
    assert await outbox.aclose(flush_timeout=10)
    await task


async def test_json_output_with_filters(
    redis_addr: Addr, redis_stream: str, tmp_path: Path
) -> None:
    await fill(redis_addr, redis_stream, tmp_path / "spool")
    base = ["--redis-url", redis_addr.redis_url, "--stream", redis_stream, "--from-start",
            "--output", "json", "--group", f"{redis_stream}-g", "--timeout", "3"]

    drains = tail(*base, "--type", "action", "--node", "gpu-08", "--count", "1")
    assert drains.returncode == 0, drains.stderr
    lines = [json.loads(line) for line in drains.stdout.splitlines()]
    assert [(e["type"], e["subject"]) for e in lines] == [("io.syncd.node.action.v1", "gpu-08")]

    both = tail(*base, "--type", "action", "--node", "gpu-0[7-8]", "--count", "2")
    assert [json.loads(line)["subject"] for line in both.stdout.splitlines()] == [
        "gpu-07", "gpu-08"]

    drifts = tail(*base, "--type", "io.syncd.node.drift.v1", "--node", "gpu-07", "--count", "1")
    assert drifts.returncode == 0, drifts.stderr
    lines = [json.loads(line) for line in drifts.stdout.splitlines()]
    assert [(e["type"], e["subject"]) for e in lines] == [("io.syncd.node.drift.v1", "gpu-07")]

    failed = tail(*base, "--type", "action.failed", "--type", "breaker", "--count", "4")
    kinds = [json.loads(line)["type"] for line in failed.stdout.splitlines()]
    assert kinds == ["io.syncd.node.action.failed.v1", "io.syncd.breaker.v1"] * 2


async def test_the_group_resumes_where_it_stopped(
    redis_addr: Addr, redis_stream: str, tmp_path: Path
) -> None:
    await fill(redis_addr, redis_stream, tmp_path / "spool")
    base = ["--redis-url", redis_addr.redis_url, "--stream", redis_stream, "--output", "json",
            "--group", f"{redis_stream}-g", "--timeout", "3"]
    first = tail(*base, "--from-start", "--count", "4")
    second = tail(*base)
    seqs = [int(json.loads(line)["sequence"]) for line in
            first.stdout.splitlines() + second.stdout.splitlines()]
    assert seqs == list(range(1, filled() + 1))


def _seqs(*runs: subprocess.CompletedProcess[str]) -> list[int]:
    out = []
    for r in runs:
        assert r.returncode == 0, r.stderr
        out += [int(json.loads(line)["sequence"]) for line in r.stdout.splitlines()]
    return out


@pytest.mark.slow
async def test_count_runs_then_from_start_print_every_event_once_in_order(
    redis_addr: Addr, redis_stream: str, tmp_path: Path
) -> None:
    await fill(redis_addr, redis_stream, tmp_path / "spool")
    base = ["--redis-url", redis_addr.redis_url, "--stream", redis_stream, "--output", "json",
            "--group", f"{redis_stream}-g", "--timeout", "3"]
    first = tail(*base, "--from-start", "--count", "5")
    second = tail(*base, "--count", "5")
    assert _seqs(first, second) == list(range(1, 11))
    # A reader that has read before rewinds and gets every event again, once each.
    assert _seqs(tail(*base, "--from-start")) == list(range(1, filled() + 1))
    assert _seqs(tail(*base)) == []
    # And a run after a --count run resumes exactly where it stopped.
    rewound = tail(*base, "--from-start", "--count", "7")
    assert _seqs(rewound, tail(*base)) == list(range(1, filled() + 1))


async def test_from_start_after_a_killed_reader_prints_no_event_twice(
    redis_addr: Addr, redis_stream: str, tmp_path: Path
) -> None:
    """A tail killed after fetching leaves entries pending; a rewind must not repeat them."""
    await fill(redis_addr, redis_stream, tmp_path / "spool")
    group = f"{redis_stream}-g"
    base = ["--redis-url", redis_addr.redis_url, "--stream", redis_stream, "--output", "json",
            "--group", group, "--timeout", "3"]
    assert _seqs(tail(*base, "--from-start", "--count", "2")) == [1, 2]
    consumer = f"{getpass.getuser()}@{socket.gethostname()}"
    r = redis.Redis(host=redis_addr.host, port=redis_addr.port)
    try:  # what a killed tail leaves: entries fetched, never acked
        fetched: Any = r.xreadgroup(group, consumer, {redis_stream: ">"}, count=6)
        assert len(fetched[0][1]) == 6
    finally:
        r.close()
    resumed = tail(*base, "--count", "8")
    assert _seqs(resumed) == list(range(3, 11))  # the pending ones first, then new ones
    assert _seqs(tail(*base, "--from-start")) == list(range(1, filled() + 1))


async def test_yaml_output(redis_addr: Addr, redis_stream: str, tmp_path: Path) -> None:
    await fill(redis_addr, redis_stream, tmp_path / "spool")
    out = tail("--redis-url", redis_addr.redis_url, "--stream", redis_stream, "--from-start",
               "--group", f"{redis_stream}-g", "--count", "2", "-o", "yaml", "--timeout", "5")
    assert out.returncode == 0, out.stderr
    docs = list(yaml.safe_load_all(out.stdout))
    assert [d["sequence"].lstrip("0") for d in docs if d] == ["1", "2"]


async def test_table_output(redis_addr: Addr, redis_stream: str, tmp_path: Path) -> None:
    await fill(redis_addr, redis_stream, tmp_path / "spool")
    out = tail("--redis-url", redis_addr.redis_url, "--stream", redis_stream, "--from-start",
               "--group", f"{redis_stream}-g", "--count", "3", "--timeout", "5")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].split()[1:4] == ["1", "drift", "gpu-07"]
    assert lines[0].endswith("[not_ready] drift #0 of gpu-07")
    assert lines[2].split()[1:4] == ["3", "action", "gpu-07"]
    assert "drain ok gpu-07: not ready for 30s" in lines[2]


def test_unreachable_redis_exits_3_with_one_line() -> None:
    out = tail("--redis-url", f"redis://:secret@127.0.0.1:{free_port()}/0", "--count", "1")
    assert out.returncode == 3
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr
    assert "secret" not in out.stderr
    assert "cannot reach Redis" in out.stderr


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    assert tail("--count", "0").returncode == 2
    assert tail("--output", "xml").returncode == 2
    assert tail("--node", "gpu[1-").returncode == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("events:\n  redis:\n    maxlen: 0\n")
    assert tail("--config", str(bad)).returncode == 2
