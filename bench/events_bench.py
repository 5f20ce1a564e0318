"""Events per second through the outbox to Redis and MQTT, for each fsync policy.

``python -m bench.events_bench`` starts its own redis-server and mosquitto on free ports
(mosquitto with ``set_tcp_nodelay true``, as docs/events.md recommends), publishes
``--events`` drift events in ``publish()`` calls of ``--per-publish`` (as a reconcile pass
would), and measures from the first publish until ``durable()`` returns (publish/s: into the
spool) and until both sinks acknowledged the last event (end-to-end), and the CPU time of this
process (every thread) per event, which a loaded machine disturbs less. The event-loop time of
one ``publish()`` is bench/publish_latency.py's.
``--machine`` uses the brokers on 127.0.0.1:6379 and :1883 instead (unique key and topics).
Not a test: it prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from syncd.core.model import DriftEvent, EventType
from syncd.events import Outbox, make_sinks
from syncd.settings.events import EventsSettings, MqttSink, RedisSink
from tests.fixtures.brokers import Addr, PrivateBroker

#: (label, Redis on, MQTT on, mqtt.stream): both sinks, each alone, and MQTT's batch stream.
ROWS = (("redis+mqtt", True, True, "events"), ("redis", True, False, "events"),
        ("mqtt", False, True, "events"), ("redis+mqtt (batches)", True, True, "batches"),
        ("mqtt (batches)", False, True, "batches"))


def sample(count: int) -> list[DriftEvent]:
    """Drift events of realistic size (~700 bytes of JSON) spread over 64 nodes."""
    out = []
    for i in range(count):
        node = f"gpu{i % 64:03d}"
        kube = {"name": node, "ready": False, "cordoned": False, "gone": False, "taints": [],
                "gpu_capacity": {"nvidia.com/gpu": 8}, "gpu_allocatable": {"nvidia.com/gpu": 0},
                "gpu_held": {}}
        slurm = {"name": node, "state": "MIXED+DRAIN", "reason": "syncd: not ready",
                 "reason_user": "slurm", "available_features": ["gpu_avail_0"],
                 "active_features": ["gpu_avail_0"], "gres_gpus": 8, "gres_used_gpus": 2,
                 "hold_gpus": 0}
        data = {"kubernetes": kube, "slurm": slurm, "drift": [{"kind": "not_ready"}],
                "why": f"NotReady for 31s (event {i})"}
        out.append(DriftEvent(EventType.DRIFT, node, data))
    return out


async def one_run(
    cfg: EventsSettings, events: list[DriftEvent], per_publish: int
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as spool:
        outbox = Outbox(cfg, cluster="bench", instance="b", spool_dir=Path(spool),
                        sinks=make_sinks(cfg, client_id=f"bench-{uuid.uuid4().hex[:6]}"))
        runner = asyncio.create_task(outbox.run())
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(events), per_publish):
            outbox.publish(events[i:i + per_publish])
            await asyncio.sleep(0)  # let the delivery lanes run between reconcile passes
        await outbox.durable()  # publish() only queues: "publish/s" is into the spool
        spooled = time.perf_counter() - start
        if outbox.spool_stats().dropped:
            raise SystemExit("bench: the memory buffer dropped events")
        flushed = await outbox.flush(timeout=600)
        total = time.perf_counter() - start
        cpu = time.process_time() - cpu
        await outbox.aclose(flush_timeout=5)
        await runner
        if not flushed:
            raise SystemExit("bench: delivery did not finish")
    return {"publish": len(events) / spooled, "end_to_end": len(events) / total,
            "cpu_us": cpu / len(events) * 1e6}


async def main(args: argparse.Namespace) -> None:
    brokers: list[PrivateBroker] = []
    if args.machine:
        redis_addr, mqtt_addr = Addr("127.0.0.1", 6379), Addr("127.0.0.1", 1883)
    else:
        work = Path(tempfile.mkdtemp(prefix="syncd-bench-brokers-"))
        brokers = [PrivateBroker("redis", work / "redis"), PrivateBroker("mosquitto", work / "mq")]
        for broker in brokers:
            broker.start()
        redis_addr, mqtt_addr = brokers[0].addr, brokers[1].addr
    key = f"bench-{uuid.uuid4().hex[:8]}"
    base = EventsSettings(
        batch_size=args.batch,
        redis=RedisSink(url=redis_addr.redis_url, stream=key, maxlen=args.events * 2),
        mqtt=MqttSink(enabled=True, host=mqtt_addr.host, port=mqtt_addr.port, topic_prefix=key),
    )
    events = sample(args.events)
    print(f"{args.events} events, {args.per_publish} per publish(), batch_size {args.batch}, "
          f"brokers: {'machine' if args.machine else 'private'}")
    print(f"{'fsync':<8} {'sinks':<22} {'publish/s':>10} {'end-to-end/s':>13} {'CPU µs/event':>13}")
    try:
        for fsync in args.fsync:
            for label, redis_on, mqtt_on, stream in ROWS:
                cfg = replace(base, fsync=fsync, redis=replace(base.redis, enabled=redis_on),
                              mqtt=replace(base.mqtt, enabled=mqtt_on, stream=stream))
                count = events if fsync != "always" else events[: max(1, len(events) // 5)]
                r = await one_run(cfg, count, args.per_publish)
                print(f"{fsync:<8} {label:<22} {r['publish']:>10.0f} {r['end_to_end']:>13.0f} "
                      f"{r['cpu_us']:>13.1f}", flush=True)
    finally:
        for broker in brokers:
            broker.stop()
        if args.machine:
            import redis

            redis.Redis(host=redis_addr.host, port=redis_addr.port).delete(key)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--per-publish", type=int, default=100)
    parser.add_argument("--batch", type=int, default=500, help="EventsSettings.batch_size")
    parser.add_argument("--machine", action="store_true", help="use the brokers on 6379/1883")
    parser.add_argument("--fsync", nargs="+", default=["off", "batch", "always"],
                        choices=["off", "batch", "always"], help="the policies to run")
    asyncio.run(main(parser.parse_args()))
