"""``syncd events tail``: follow the event stream in Redis, for on-call.

It reads through a consumer group (XREADGROUP) named after the operator and host, and acks
what it printed, so a second ``tail`` by the same person resumes where the last one stopped
and does not replay the whole stream. ``--from-start`` rewinds the group to the oldest entry
still in the stream. Filters (``--type``, ``--node``) are applied here, on the ``type`` and
``subject`` fields every entry carries; entries that do not match are acked too.

Exit codes: 0 done (``--count`` reached, ``--timeout`` passed, or Ctrl-C), 2 bad usage or
config, 3 Redis unreachable (one line on stderr).
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
import time
from collections.abc import Iterable
from typing import Any

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from syncd.cli import exits

_PREFIXES = ("io.syncd.", "node.", "outbox.")


def register(sub: Any) -> None:
    events = sub.add_parser("events", help="work with the event stream")
    verbs = events.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = verbs.add_parser("tail", help="print events from the Redis stream as they arrive")
    p.add_argument("--config", metavar="FILE", help="read events.redis.url and .stream from FILE")
    p.add_argument("--redis-url", help="overrides the config (default redis://127.0.0.1:6379/0)")
    p.add_argument("--stream", help="overrides the config (default syncd:events)")
    p.add_argument("--type", action="append", default=[], metavar="T",
                   help="only this type: full (io.syncd.node.drift.v1) or short (drift, "
                        "action, action.failed, breaker, skipped, overflow); repeatable")
    p.add_argument("--node", action="append", default=[], metavar="N",
                   help="only events about this node; repeatable")
    p.add_argument("--from-start", action="store_true",
                   help="rewind this reader's group to the oldest event in the stream")
    p.add_argument("--group", help="consumer group (default syncd-tail:<user>@<host>)")
    p.add_argument("--output", choices=("table", "json"), default="table")
    p.add_argument("--count", type=int, metavar="N", help="exit after printing N events")
    p.add_argument("--timeout", type=float, metavar="S", help="exit after S seconds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (args.count is not None and args.count < 1) or (args.timeout is not None
                                                       and args.timeout < 0):
        print("syncd events tail: --count must be 1 or more, --timeout 0 or more", file=sys.stderr)
        return exits.USAGE
    url, stream = "redis://127.0.0.1:6379/0", "syncd:events"
    if args.config:
        from syncd.config import ConfigError, load_file

        try:
            cfg = load_file(args.config).events.redis
        except ConfigError as exc:
            print(f"syncd events tail: {args.config}: {exc.problems[0]}", file=sys.stderr)
            return exits.USAGE
        url, stream = cfg.url, cfg.stream
    url, stream = args.redis_url or url, args.stream or stream
    user = f"{getpass.getuser()}@{socket.gethostname()}"
    tail = Tail(url=url, stream=stream, group=args.group or f"syncd-tail:{user}", consumer=user)
    try:
        tail.open(from_start=args.from_start)
        printed = 0
        deadline = None if args.timeout is None else time.monotonic() + args.timeout
        for entry_id, event in tail.follow(deadline):
            if matches(event, args.type, args.node):
                text = json.dumps(event, separators=(",", ":"))
                print(text if args.output == "json" else row(event), flush=True)
                printed += 1
            tail.ack(entry_id)  # after printing: a crash re-prints rather than loses
            if args.count is not None and printed >= args.count:
                break
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        from syncd.events.redis_sink import redact

        print(f"syncd events tail: cannot reach Redis at {redact(url)}: {exc}", file=sys.stderr)
        return exits.UNREACHABLE
    finally:
        tail.close()
    return exits.OK


class Tail:
    """A consumer-group reader of one stream that acks each entry once it is handed out."""

    def __init__(self, *, url: str, stream: str, group: str, consumer: str) -> None:
        self.stream, self.group, self.consumer = stream, group, consumer
        self.client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)

    def open(self, *, from_start: bool) -> None:
        try:
            self.client.xgroup_create(self.stream, self.group, id="0" if from_start else "$",
                                      mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            if from_start:
                self.client.xgroup_setid(self.stream, self.group, id="0")

    def follow(self, deadline: float | None) -> Iterable[tuple[bytes, dict[str, Any]]]:
        """Entries this consumer had but never acked first, then new ones as they come.

        Yields ``(entry_id, event)``; the caller acks each with :meth:`ack`.
        """
        start = "0"
        while deadline is None or time.monotonic() < deadline:
            block = 1000 if deadline is None else max(1, int((deadline - time.monotonic()) * 1000))
            reply: Any = self.client.xreadgroup(self.group, self.consumer, {self.stream: start},
                                           count=100, block=min(block, 1000))
            entries = reply[0][1] if reply else []
            if start == "0" and not entries:
                start = ">"  # the pending ones are done
                continue
            for entry_id, fields in entries:
                if b"event" in fields:
                    yield entry_id, json.loads(fields[b"event"])
                else:
                    self.ack(entry_id)  # not one of ours (or deleted): nothing to show

    def ack(self, entry_id: bytes) -> None:
        self.client.xack(self.stream, self.group, entry_id)

    def close(self) -> None:
        self.client.close()


def short_type(event_type: str) -> str:
    """``io.syncd.node.action.failed.v1`` -> ``action.failed``."""
    name = event_type.removesuffix(".v1")
    for prefix in _PREFIXES:
        name = name.removeprefix(prefix)
    return name


def matches(event: dict[str, Any], types: list[str], nodes: list[str]) -> bool:
    event_type = str(event.get("type", ""))
    if types and event_type not in types and short_type(event_type) not in types:
        return False
    return not nodes or event.get("subject", "") in nodes


def row(event: dict[str, Any]) -> str:
    """One table line: time, sequence, type, subject, and what happened."""
    data = event.get("data") or {}
    kind = short_type(str(event.get("type", "")))
    if kind == "drift":
        kinds = ",".join(str(d.get("kind")) for d in data.get("drift", []))
        what = f"[{kinds}] {data.get('why', '')}"
    elif kind.startswith("action"):
        what = (f"{data.get('action')} {data.get('outcome')} {data.get('hostlist')}: "
                f"{data.get('why')}")
        if data.get("error"):
            what += f" ({data['error']})"
    elif kind == "breaker":
        what = f"{data.get('state')}: {data.get('why')}"
    elif kind == "overflow":
        what = f"{data.get('sink')} lost {data.get('dropped')}: {data.get('why')}"
    else:
        what = " ".join(f"{k}={v}" for k, v in data.items())
    clock = str(event.get("time", ""))[11:23]
    seq = str(event.get("sequence", "")).lstrip("0") or "0"
    return f"{clock:<12} {seq:>8} {kind:<13} {event.get('subject', '-'):<20} {what}"
