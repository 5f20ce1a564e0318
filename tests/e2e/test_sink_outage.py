"""A Redis outage as on-call sees it: syncd as a real subprocess whose Redis (a private
instance on its own port) is killed and started again. `/readyz` stays ready (events wait in
the spool) but names the sink down, `syncd status` says so on its summary line, the metrics
count one outage, the log has one line when it began and one when it ended, and the drain
made meanwhile reaches Redis afterwards."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.stack import daemon_stack
from tests.events.helpers import read_stream
from tests.fixtures.brokers import PrivateBroker
from tests.fixtures.waiting import eventually


async def test_a_redis_outage_is_shown_counted_logged_once_and_loses_nothing(
    tmp_path_factory: pytest.TempPathFactory, private_redis: PrivateBroker,
) -> None:
    overrides = {"events.retry_max": "1s"}
    tmp = tmp_path_factory.mktemp("sinkout")  # short: the sandbox's step sockets
    with daemon_stack(tmp, nodes=4, redis_url=private_redis.url, stream="ev",
                      overrides=overrides) as st:
        d = st.daemon

        def status_line() -> str:
            out = subprocess.run([sys.executable, "-m", "syncd", "status"], env=st.cli_env,
                                 capture_output=True, text=True, timeout=30, check=False)
            return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""

        await eventually(lambda: read_stream(private_redis.url, "ev"), blocking=True,
                         what="the first events on Redis")
        private_redis.kill()
        async with st.sim() as sim:
            await sim.cordon("gpu002")
        await eventually(lambda: d.get("/readyz")[1].get("event_sinks", {}).get("redis")
                         == "down", blocking=True, within=60, what="redis reported down")
        status, body = d.get("/readyz")
        assert status == 200 and body["ready"] is True  # Slurm writes go on
        await eventually(lambda: "event sinks DOWN: redis" in status_line(), blocking=True,
                         within=30, what="status names the sink")
        await eventually(lambda: d.metric("syncd_outbox_failed_attempts_total",
                                          sink="redis") >= 3, blocking=True, within=60,
                         what="three failed deliveries")
        assert d.metric("syncd_outbox_sink_outages_total", sink="redis") == 1

        private_redis.start()
        await eventually(lambda: d.get("/readyz")[1].get("event_sinks", {}).get("redis")
                         == "up", blocking=True, within=60, what="redis up again")
        assert "event sinks DOWN" not in status_line()

        def drain_announced() -> bool:
            return any(e["type"] == "io.syncd.node.action.v1" and e.get("subject") == "gpu002"
                       and e["data"]["action"] == "drain" for e in read_stream(private_redis.url,
                                                                           "ev"))
        await eventually(drain_announced, blocking=True, within=60,
                         what="the drain made during the outage on Redis")
        logs = [str(r.get("msg", "")) for r in d.logs()]
        assert sum("outbox: redis unreachable" in m for m in logs) == 1, logs[-20:]
        assert sum("outbox: redis reachable again" in m for m in logs) == 1, logs[-20:]
