"""One syncd daemon with everything it talks to, each of the test's own: a Slurm sandbox, the
Kubernetes simulator as a process, and the daemon as a process; Redis is the caller's (a
private one when the test stops it). Synchronous, so a module-scoped fixture can hold it."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubesim.client import SimClient
from kubesim.server import start_sim_process
from tests.e2e.kit import Syncd, child_env, new_port, syncd_config
from tests.fixtures.slurm import SlurmSandbox, running_sandbox
from tests.fixtures.waiting import eventually_sync


@dataclass
class Stack:
    box: SlurmSandbox
    sim_url: str
    sim_token: str
    daemon: Syncd
    env: dict[str, str]

    def sim(self) -> SimClient:
        """A client of the simulator (``async with stack.sim() as c``)."""
        return SimClient(self.sim_url, self.sim_token)

    @property
    def cli_env(self) -> dict[str, str]:
        """The environment of a user on the daemon's host: the config points at the socket."""
        return dict(self.env, SYNCD_CONFIG=str(self.daemon.config))


def stop_ctld(box: SlurmSandbox, within: float = 30.0) -> None:
    """Stop the sandbox's slurmctld and make sure it is down (``scontrol ping``).

    ``slurm-sandbox ctld-stop`` finds slurmctld by its pid file, which slurmctld writes some
    time after it starts; before that the script stops nothing. So: again until it is down.
    """
    def stopped() -> bool:
        box.ctld_stop()
        return "DOWN" in box.run("scontrol", "ping", check=False).stdout
    eventually_sync(stopped, within=within, every=0.5,
                    what=f"slurmctld of {box.dir} down after ctld-stop")


@contextlib.contextmanager
def daemon_stack(tmp: Path, *, nodes: int, redis_url: str, stream: str,
                 overrides: dict[str, Any] | None = None) -> Iterator[Stack]:
    token = secrets.token_hex(16)
    with running_sandbox(tmp / "slurm", nodes=nodes) as box, start_sim_process(
            "--token", token, "--write-kubeconfig", str(tmp / "kubeconfig"), "--nodes",
            str(nodes), log=tmp / "sim.log") as (_, sim_url):
        port = new_port()
        cfg = syncd_config(
            tmp / "syncd.yaml", kubeconfig=tmp / "kubeconfig", slurm_conf=box.conf,
            state_dir=tmp / "state", redis_url=redis_url, stream=stream, mqtt_host="127.0.0.1",
            mqtt_port=1, mqtt_prefix="unused", identity="stack", lease="stack", port=port,
            overrides={"events.mqtt.enabled": False, "daemon.leader_election.enabled": False,
                       **(overrides or {})})
        env = child_env(box.conf)
        d = Syncd.start(cfg, port, tmp / "syncd.log", env)
        try:
            # 90 s: a cold start under load (tests/e2e/test_daemon.py `ready`)
            eventually_sync(lambda: d.ready_as(None), within=90, what="syncd ready")
            yield Stack(box, sim_url, token, d, env)
        finally:
            d.kill()
