"""The daemon with its event spool on a real full filesystem, both ``on_spool_failure``
settings: /readyz fails with the reason; ``continue`` keeps Slurm right (the drain happens)
and ``hold`` writes nothing to Slurm until the spool can be written; either way the drain's
event reaches Redis once space returns."""

from __future__ import annotations

import pytest

from tests.e2e.kit import stream_events
from tests.e2e.stack import daemon_stack
from tests.events.fullfs import SmallFilesystem, small_filesystem
from tests.fixtures.brokers import Addr
from tests.fixtures.waiting import eventually

__all__ = ["small_filesystem"]  # the fixture, used by name



@pytest.mark.parametrize("mode", ["continue", "hold"])
async def test_a_full_spool_fails_readyz_and_slurm_writes_follow_the_setting(
    tmp_path_factory: pytest.TempPathFactory, small_filesystem: SmallFilesystem,
    redis_addr: Addr, redis_stream: str, mode: str,
) -> None:
    overrides = {"events.spool_dir": str(small_filesystem.path / "spool"),
                 "events.on_spool_failure": mode, "events.mqtt.enabled": False}
    tmp = tmp_path_factory.mktemp("spoolfull")  # short: the sandbox's step sockets
    with daemon_stack(tmp, nodes=4, redis_url=redis_addr.redis_url, stream=redis_stream,
                      overrides=overrides) as st:
        d, box = st.daemon, st.box

        def drained() -> bool:
            return "DRAIN" in box.run("scontrol", "-o", "show", "node", "gpu002").stdout

        small_filesystem.fill()
        async with st.sim() as sim:
            await sim.cordon("gpu002")
        await eventually(lambda: d.get("/readyz")[0] == 503, blocking=True, within=60,
                         what="/readyz fails while the spool cannot be written")
        _, body = d.get("/readyz")
        assert body["spool_ok"] is False and body["problems"][0].startswith("spool: ")
        assert set(body["event_sinks"]) == {"redis"}  # reported, not failing readiness
        assert d.metric("syncd_spool_writable") == 0
        assert d.metric("syncd_spool_write_failures_total") >= 1
        assert d.metric("syncd_spool_outages_total") == 1
        if mode == "continue":
            await eventually(drained, blocking=True, what="the drain happens anyway")
        else:
            await eventually(lambda: d.metric("syncd_actions_total", kind="drain",
                                              outcome="held") >= 1, blocking=True,
                             what="the drain held back")
            assert not drained()  # the held pass wrote nothing
        small_filesystem.free()
        await eventually(lambda: d.get("/readyz")[0] == 200, blocking=True, within=60,
                         what="ready again once space returns")
        assert d.metric("syncd_spool_writable") == 1
        await eventually(drained, blocking=True, what="gpu002 drained")

        def announced() -> bool:
            return any(e["type"] == "io.syncd.node.action.v1" and e["subject"] == "gpu002"
                       and e["data"]["action"] == "drain" and e["data"]["outcome"] == "ok"
                       for e in stream_events(redis_addr, redis_stream))
        await eventually(announced, blocking=True, within=60,
                         what="the drain's event on Redis after recovery")
