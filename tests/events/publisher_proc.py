"""A small real syncd-like process for the crash test: publishes through the Outbox.

``--count N`` spools N numbered events first (then prints ``spooled``), and every run then
delivers until the spool is empty (then prints ``flushed``). The test SIGKILLs the first run
mid-delivery and starts a second one with ``--count 0`` to resume from the same spool.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from syncd.events import Outbox, make_sinks
from syncd.settings.events import EventsSettings, MqttSink, RedisSink
from tests.events.helpers import numbered


async def main(args: argparse.Namespace) -> int:
    cfg = EventsSettings(
        batch_size=args.batch, retry_max=0.5,
        redis=RedisSink(url=args.redis, stream=args.stream),
        mqtt=MqttSink(enabled=True, port=args.mqtt_port, topic_prefix=args.prefix),
    )
    outbox = Outbox(cfg, cluster="crash", instance="proc", spool_dir=Path(args.spool),
                    sinks=make_sinks(cfg, client_id=f"{args.prefix}-proc"))
    events = numbered(args.count)
    for start in range(0, len(events), 100):
        outbox.publish(events[start:start + 100])
    await outbox.durable()
    print("spooled", flush=True)
    task = asyncio.create_task(outbox.run())
    flushed = await outbox.aclose(flush_timeout=120)
    await task
    print("flushed" if flushed else "not flushed", flush=True)
    return 0 if flushed else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for flag in ("--spool", "--redis", "--stream", "--prefix"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--mqtt-port", type=int, required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--batch", type=int, default=20)
    raise SystemExit(asyncio.run(main(parser.parse_args())))
