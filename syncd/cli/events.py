"""``syncd events tail``: follow the event stream in Redis, for on-call.

It reads through a consumer group (XREADGROUP) named after the operator and host, and acks
what it printed, so a second ``tail`` by the same person resumes where the last one stopped
and does not replay the whole stream. It never fetches more than it is still going to print
(``--count``), so an entry is either printed and acked or left for the next run, never
fetched and dropped. ``--from-start`` rewinds the group to the oldest entry still in the
stream and forgets what this reader had fetched before, so it prints everything once.
Filters (``--type``, ``--node``) are applied here, on the ``type`` and ``subject`` fields
every entry carries; entries that do not match are acked too.

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
from collections.abc import Callable, Iterator
from typing import Any

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from syncd.cli import exits
from syncd.cli.output import Help, add_output, command, dump, expand

_PREFIXES = ("io.syncd.", "node.", "outbox.")
_PAGE = 100  # entries per XREADGROUP at most


def register(sub: Any) -> None:
    events = sub.add_parser("events", help="work with the event stream", formatter_class=Help,
                            epilog="examples:\n  syncd events tail --node gpu042")
    verbs = events.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = command(verbs, "tail", help="print events from the Redis stream as they arrive", examples=[
        "syncd events tail --config /etc/syncd/syncd.yaml --type drift --node gpu017",
        "syncd events tail --from-start --count 20 -o json | jq .type",
        "syncd events tail --type action.failed --timeout 60",
    ], description=(
        "Print events from the Redis stream as they arrive. A second run resumes where the "
        "last stopped (a consumer group per user and host); --from-start prints everything "
        "still in the stream, once."))
    p.add_argument("--config", metavar="FILE",
                   help="read events.redis.url and .stream from FILE (default: $SYNCD_CONFIG "
                        "when set, else the defaults below)")
    p.add_argument("--redis-url", metavar="URL",
                   help="overrides the config (default: redis://127.0.0.1:6379/0)")
    p.add_argument("--stream", metavar="KEY", help="overrides the config (default: syncd:events)")
    p.add_argument("--type", action="append", default=[], metavar="T",
                   help="only this type: full (io.syncd.node.drift.v1) or short (drift, "
                        "action, action.failed, breaker, skipped, overflow); repeatable "
                        "(default: every type)")
    p.add_argument("--node", action="append", default=[], metavar="N",
                   help="only events about these nodes: a name or a hostlist ('gpu[001-004]'); "
                        "repeatable (default: every node)")
    p.add_argument("--from-start", action="store_true",
                   help="rewind this reader's group to the oldest event in the stream "
                        "(default: resume where the last run stopped; new readers start now)")
    p.add_argument("--group", metavar="NAME",
                   help="consumer group (default: syncd-tail:<user>@<host>)")
    add_output(p, ("table", "json", "yaml"))
    p.add_argument("--count", type=int, metavar="N",
                   help="exit after printing N events (default: run until Ctrl-C)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="exit after SECONDS seconds (default: run until Ctrl-C)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (args.count is not None and args.count < 1) or (args.timeout is not None
                                                       and args.timeout < 0):
        print("syncd events tail: --count must be 1 or more, --timeout 0 or more", file=sys.stderr)
        return exits.USAGE
    try:
        nodes = expand(args.node)
    except ValueError as exc:
        print(f"syncd events tail: --node {exc}", file=sys.stderr)
        return exits.USAGE
    url, stream = "redis://127.0.0.1:6379/0", "syncd:events"
    config = args.config
    if config is None and not (args.redis_url and args.stream):
        import os

        config = os.environ.get("SYNCD_CONFIG") or None
    if config:
        from syncd.config import ConfigError, load_file

        try:
            cfg = load_file(config).events.redis
        except ConfigError as exc:
            print(f"syncd events tail: {config}: {exc.problems[0]}", file=sys.stderr)
            return exits.USAGE
        url, stream = cfg.url, cfg.stream
    url, stream = args.redis_url or url, args.stream or stream
    user = f"{getpass.getuser()}@{socket.gethostname()}"
    tail = Tail(url=url, stream=stream, group=args.group or f"syncd-tail:{user}", consumer=user)
    try:
        tail.open(from_start=args.from_start)
        printed = 0
        deadline = None if args.timeout is None else time.monotonic() + args.timeout

        def room() -> int:
            return _PAGE if args.count is None else args.count - printed

        for entry_id, event in tail.follow(deadline, room):
            if matches(event, args.type, nodes):
                show(event, args.output)
                printed += 1
            tail.ack(entry_id)  # after printing: a crash re-prints rather than loses
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        from syncd.events.redis_sink import redact

        print(f"syncd events tail: cannot reach Redis at {redact(url)}: {exc}; is it running, "
              "and are --redis-url / events.redis.url right?", file=sys.stderr)
        return exits.UNREACHABLE
    finally:
        tail.close()
    return exits.OK


def show(event: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(event, separators=(",", ":")), flush=True)
    elif fmt == "yaml":
        print("---", flush=False)
        dump(event, "yaml")
        sys.stdout.flush()
    else:
        print(row(event), flush=True)


class Tail:
    """A consumer-group reader of one stream; the caller acks each entry it was handed."""

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
                # Entries this reader fetched earlier but never acked would otherwise come
                # twice: once as its pending ones, once again after the rewind.
                self.client.xgroup_delconsumer(self.stream, self.group, self.consumer)
                self.client.xgroup_setid(self.stream, self.group, id="0")

    def follow(self, deadline: float | None,
               room: Callable[[], int]) -> Iterator[tuple[bytes, dict[str, Any]]]:
        """Entries this consumer had but never acked first, then new ones as they come.

        ``room()`` says how many more entries the caller still wants (0 ends the read); no
        more are fetched than that. Yields ``(entry_id, event)``; the caller acks each.
        """
        start = "0"
        while deadline is None or time.monotonic() < deadline:
            want = room()
            if want <= 0:
                return
            left = None if deadline is None else deadline - time.monotonic()
            block = 1000 if left is None else max(1, min(1000, int(left * 1000)))
            reply: Any = self.client.xreadgroup(self.group, self.consumer, {self.stream: start},
                                                count=min(want, _PAGE),
                                                block=None if start == "0" else block)
            entries = reply[0][1] if reply else []
            if start == "0" and not entries:
                start = ">"  # the pending ones are done
                continue
            for entry_id, fields in entries:
                if fields and b"event" in fields:
                    yield entry_id, json.loads(fields[b"event"])
                else:
                    self.ack(entry_id)  # not one of ours (or trimmed): nothing to show

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
