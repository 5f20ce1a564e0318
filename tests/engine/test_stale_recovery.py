"""The stale-view race against a real slurmctld and a restarted API server: nodes that went
NotReady while the server was away are drained (or the breaker trips) as soon as the view is
fresh again, not at the next unrelated change or the 5-minute resync."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from kubesim.client import SimClient
from kubesim.server import start_sim_process
from syncd.core.policy import Capacity, Causes, Policy
from syncd.engine.assembly import build
from syncd.engine.metrics import Metrics
from syncd.engine.state import StateStore
from syncd.kube.client import make_api_client
from syncd.kube.watcher import Watcher
from syncd.settings.daemon import DaemonSettings
from syncd.settings.kube import KubeSettings
from syncd.slurm.scontrol import ScontrolPort
from tests.fixtures.brokers import free_port
from tests.fixtures.fakes import Recorder
from tests.fixtures.kube import ADMIN_TOKEN
from tests.fixtures.slurm import SlurmSandbox
from tests.fixtures.waiting import eventually

POLICY = Policy(capacity=Capacity(hold_jobs=False), causes=Causes(no_kubernetes_node=False),
                drain_after=3.0, resume_after=2.0)


async def test_drains_withheld_while_stale_happen_once_the_view_is_fresh(
    slurm: SlurmSandbox, tmp_path: Path,
) -> None:
    for n in slurm.nodes:
        slurm.run("scontrol", "update", f"NodeName={n}", "State=RESUME", check=False)
    kubeconfig = tmp_path / "kubeconfig"
    args = ("--token", ADMIN_TOKEN, "--listen", f"127.0.0.1:{free_port()}",
            "--state-file", str(tmp_path / "state.json"), "--write-kubeconfig", str(kubeconfig))
    victims = slurm.nodes[:2]
    with contextlib.ExitStack() as first:
        _, url = first.enter_context(start_sim_process(*args))
        async with SimClient(url, ADMIN_TOKEN) as sim:
            for n in slurm.nodes:
                await sim.add_node(n)
        api = await make_api_client(KubeSettings(kubeconfig=str(kubeconfig)))
        settings = KubeSettings(kubeconfig=str(kubeconfig), stale_after=0.5,
                                reconnect_initial=0.1, reconnect_max=1.0)
        engine = None
        watcher = Watcher(api, settings, POLICY,
                          on_change=lambda names: engine.notify(names) if engine else None)
        events = Recorder()
        engine = build(kube=watcher, slurm=ScontrolPort(slurm.settings()), outbox=events,
                       policy=POLICY, daemon=DaemonSettings(state_dir=str(tmp_path),
                                                          slurm_probe_every=300.0),
                       store=StateStore(tmp_path), metrics=Metrics(), is_leader=lambda: True)
        tasks = [asyncio.create_task(c) for c in (watcher.run(), *engine.loops().values())]
        try:
            await eventually(lambda: watcher.synced and engine.shared.ever_synced, within=30,
                             what="first pass")
            async with SimClient(url, ADMIN_TOKEN) as sim:
                for n in victims:
                    await sim.set_ready(n, False)
            await eventually(lambda: all(not watcher.view().nodes[n].ready for n in victims),
                             within=10, what="NotReady seen")
            first.close()  # the API server goes away before drain_after has passed
            # drain_after passes while the view is stale: the drains are withheld
            await eventually(lambda: engine.shared.memory.breaker.withholding_stale, within=20,
                             what="drains withheld on the stale view")
            with start_sim_process(*args):  # back, with the same objects: no change to see

                def done() -> bool:
                    drained = all("DRAIN" in slurm.node_line(n) for n in victims)
                    return drained or engine.shared.memory.breaker.open
                # the resync and the probe (the other ways out) are 5 minutes away
                await eventually(done, within=20, what="drains (or the breaker) after recovery")
                assert not engine.shared.memory.breaker.withholding_stale
        finally:
            engine.stop()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await api.close()
            for n in slurm.nodes:
                slurm.run("scontrol", "update", f"NodeName={n}", "State=RESUME", check=False)
