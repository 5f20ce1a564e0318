"""policy.down_on against the real slurmctld: a job on a node whose Kubernetes Node is deleted
is requeued as soon as the grace has passed (slurmctld itself would wait SlurmdTimeout), and a
Node re-created within the grace leaves the Slurm node and its job alone.

The delay itself (with and without syncd) is measured by bench/requeue.py, not asserted here.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from kubernetes_asyncio import client

from kubesim.client import SimClient
from syncd.core.policy import Capacity, Causes, DownOn, DownRule, Policy
from syncd.engine.assembly import build
from syncd.engine.metrics import Metrics
from syncd.engine.state import StateStore
from syncd.kube.watcher import Watcher
from syncd.settings.daemon import DaemonSettings
from syncd.settings.kube import KubeSettings
from syncd.slurm.scontrol import ScontrolPort
from tests.fixtures.fakes import Recorder
from tests.fixtures.slurm import SlurmSandbox, submit
from tests.fixtures.waiting import eventually


def job_state(box: SlurmSandbox, job: str) -> str:
    return box.run("squeue", "-h", "-j", job, "-o", "%T", check=False).stdout.strip()


POLICY = Policy(capacity=Capacity(hold_jobs=False), causes=Causes(no_kubernetes_node=False),
                down_on=DownOn(deleted=DownRule(True, 3.0)), resume_after=1.0)


async def test_a_deleted_node_goes_down_after_the_grace_and_its_job_requeues(
    kube_api: client.ApiClient, sim_client: SimClient, slurm: SlurmSandbox, tmp_path: Path,
) -> None:
    for n in slurm.nodes:
        slurm.run("scontrol", "update", f"NodeName={n}", "State=RESUME", check=False)
        await sim_client.add_node(n)
    victim, spared = slurm.nodes[3], slurm.nodes[4]
    jobs = {n: submit(slurm, ["--requeue", f"--nodelist={n}",
                              "--gres=gpu:1", "--output=/dev/null", "--wrap", "sleep 600"])
            for n in (victim, spared)}
    await eventually(lambda: all(job_state(slurm, j) == "RUNNING" for j in jobs.values()),
                     within=30, what="jobs running")
    engine = None
    watcher = Watcher(kube_api, KubeSettings(), POLICY,
                      on_change=lambda names: engine.notify(names) if engine else None)
    engine = build(kube=watcher, slurm=ScontrolPort(slurm.settings()), outbox=Recorder(),
                   policy=POLICY, daemon=DaemonSettings(state_dir=str(tmp_path), debounce=0.02),
                   store=StateStore(tmp_path), metrics=Metrics(), is_leader=lambda: True)
    tasks = [asyncio.create_task(c) for c in (watcher.run(), *engine.loops().values())]
    try:
        await eventually(lambda: watcher.synced and engine.shared.ever_synced, within=30,
                         what="first pass")
        await sim_client.delete_node(spared)
        await sim_client.add_node(spared)  # kubelet re-registers within the grace
        await sim_client.delete_node(victim)  # Karpenter took the machine
        await eventually(lambda: job_state(slurm, jobs[victim]) == "PENDING", within=30,
                         what="the job on the deleted node requeued")
        line = slurm.node_line(victim)
        assert "State=DOWN" in line and "syncd: k8s node deleted #" in line
        # The victim was deleted after the spared node, so the spared node's grace is over too.
        assert job_state(slurm, jobs[spared]) == "RUNNING"
        assert "State=DOWN" not in slurm.node_line(spared)
        await sim_client.add_node(victim)  # a new machine under the same name
        await eventually(lambda: "State=DOWN" not in slurm.node_line(victim), within=30,
                         what="syncd resumes its DOWN once the node is back")
    finally:
        engine.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        slurm.run("scancel", *jobs.values(), check=False)
        for n in (victim, spared):
            slurm.run("scontrol", "update", f"NodeName={n}", "State=RESUME", check=False)
