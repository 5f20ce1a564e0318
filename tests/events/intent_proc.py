"""A small real syncd-like process for the intent crash test: intend, "write", settle.

For key ``k<i>`` (``--count`` keys from ``--start``) it publishes one event, stores the intent,
prints ``intended <i>``, then settles it with two outcome events and prints ``settled <i>``.
With ``--stop-at intended:<i>`` or ``--stop-at settled:<i>`` it prints ``stopped`` at that
point and waits there, so the test can SIGKILL it at a known step; without it, it runs flat
out and the test kills it wherever it happens to be.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from syncd.core.model import DriftEvent, EventType
from syncd.events import Outbox, make_sinks
from syncd.settings.events import EventsSettings, MqttSink, RedisSink


def outcome(i: int, n: int) -> DriftEvent:
    return DriftEvent(EventType.SKIP, f"node{i}", {"why": f"k{i} outcome {n}", "value": "",
                                                   "source": "intent_proc"})


async def main(args: argparse.Namespace) -> int:
    # No sink: nothing leaves the spool, so the test can read every event stored.
    cfg = EventsSettings(fsync=args.fsync, redis=RedisSink(enabled=False),
                         mqtt=MqttSink(enabled=False))
    outbox = Outbox(cfg, cluster="crash", instance="intents", spool_dir=Path(args.spool),
                    sinks=make_sinks(cfg))
    stop_at = args.stop_at or ""

    async def checkpoint(line: str) -> None:
        print(line, flush=True)
        if line.replace(" ", ":") == stop_at:
            print("stopped", flush=True)
            await asyncio.Event().wait()

    for i in range(args.start, args.start + args.count):
        outbox.publish([DriftEvent(EventType.SKIP, f"node{i}",
                                   {"why": f"k{i} before", "value": "", "source": "p"})])
        await outbox.intend(f"k{i}", {"action": "drain", "node": f"node{i}", "i": i})
        await checkpoint(f"intended {i}")
        await outbox.settle(f"k{i}", [outcome(i, 1), outcome(i, 2)])
        await checkpoint(f"settled {i}")
    await outbox.aclose(flush_timeout=1)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--spool", required=True)
    parser.add_argument("--fsync", default="batch")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--stop-at", default="")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
