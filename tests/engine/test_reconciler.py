"""The reconcile loop with real parts: the Watcher against the simulator, the scontrol port
against the real slurmctld. Events go to a recording publisher (our own port)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from kubesim.client import SimClient
from syncd.core.model import ActionKind, EventType, KubeView
from syncd.core.policy import Capacity, Causes, Policy
from syncd.core.ports import KubeSource
from syncd.engine.assembly import Engine, build
from syncd.engine.metrics import Metrics
from syncd.engine.state import StateStore
from syncd.kube.watcher import Watcher
from syncd.settings.daemon import DaemonSettings
from syncd.settings.kube import KubeSettings, NameMapping
from syncd.slurm.scontrol import ScontrolPort
from syncd.slurm.sinfo import NODE_FORMAT
from tests.fixtures.fakes import Recorder
from tests.fixtures.slurm import SlurmSandbox
from tests.fixtures.waiting import eventually

ANNOTATION = "slurm.example.com/node"


@pytest.fixture
def clean_slurm(slurm: SlurmSandbox) -> SlurmSandbox:
    for n in slurm.nodes:
        slurm.run("scontrol", "update", f"NodeName={n}", "State=RESUME", check=False)
    return slurm


def _reconciler(watcher: KubeSource, port: ScontrolPort, rec: Recorder,
                policy: Policy, tmp: Path, *, dry_run: bool = False) -> Engine:
    return build(kube=watcher, slurm=port, outbox=rec, policy=policy,
                 daemon=DaemonSettings(dry_run=dry_run, debounce=0.0),
                 store=StateStore(tmp), metrics=Metrics(), is_leader=lambda: True)


@pytest.fixture
async def annotated(sim_client: SimClient, clean_slurm: SlurmSandbox) -> None:
    for n in clean_slurm.nodes:
        await sim_client.add_node(f"k8s-{n}", annotations={ANNOTATION: n})


POLICY = Policy(capacity=Capacity(hold_jobs=False),
                causes=Causes(no_kubernetes_node=False))


async def test_hostile_annotation_is_skipped_published_and_never_reaches_scontrol(
    kube_api: client.ApiClient, sim_client: SimClient, clean_slurm: SlurmSandbox,
    annotated: None, tmp_path: Path,
) -> None:
    hostile = "gpu001 State=DOWN\nReason=pwned"
    await sim_client.add_node("k8s-evil", annotations={ANNOTATION: hostile})
    settings = KubeSettings(name_mapping=NameMapping(mode="annotation", key=ANNOTATION))
    watcher = Watcher(kube_api, settings, POLICY)
    task = asyncio.create_task(watcher.run())
    port = ScontrolPort(clean_slurm.settings())
    rec = Recorder()
    r = _reconciler(watcher, port, rec, POLICY, tmp_path)
    try:
        await eventually(lambda: watcher.synced, what="watcher synced")
        await r.reconciler.reconcile()
        skips = rec.of(EventType.SKIP)
        assert len(skips) == 1 and skips[0].data["source"] == "name_mapping"
        assert "k8s-evil" in str(skips[0].data["value"])
        await r.reconciler.reconcile()
        assert len(rec.of(EventType.SKIP)) == 1  # edge-triggered, not repeated
        assert all("pwned" not in " ".join(argv) and "State=DOWN" not in " ".join(argv)
                   for argv in port.runner.history)
        assert "k8s-evil" not in watcher.view().nodes
    finally:
        task.cancel()


async def test_dry_run_publishes_but_never_writes(
    kube_api: client.ApiClient, sim_client: SimClient, clean_slurm: SlurmSandbox,
    annotated: None, tmp_path: Path,
) -> None:
    settings = KubeSettings(name_mapping=NameMapping(mode="annotation", key=ANNOTATION))
    await sim_client.cordon(f"k8s-{clean_slurm.nodes[0]}")
    watcher = Watcher(kube_api, settings, POLICY)
    task = asyncio.create_task(watcher.run())
    port = ScontrolPort(clean_slurm.settings())
    rec = Recorder()
    r = _reconciler(watcher, port, rec, POLICY, tmp_path, dry_run=True)
    try:
        await eventually(lambda: watcher.synced, what="watcher synced")
        for _ in range(5):  # repeated dry-run plans must not look like flapping
            await r.reconciler.reconcile()
        writes = [a for a in port.runner.history if "update" in a or "sbatch" in a[0]]
        assert writes == []
        drains = [e for e in rec.of(EventType.ACTION) if e.data["action"] == "drain"]
        assert drains and all(e.data["outcome"] == "dry_run" for e in drains)
        assert r.shared.memory.node(clean_slurm.nodes[0]).flap_level == 0
        line = clean_slurm.node_line(clean_slurm.nodes[0])
        assert "DRAIN" not in line
    finally:
        task.cancel()


async def test_operator_drain_and_resume_through_the_reconciler(
    kube_api: client.ApiClient, clean_slurm: SlurmSandbox, annotated: None, tmp_path: Path,
) -> None:
    settings = KubeSettings(name_mapping=NameMapping(mode="annotation", key=ANNOTATION))
    watcher = Watcher(kube_api, settings, POLICY)
    task = asyncio.create_task(watcher.run())
    port = ScontrolPort(clean_slurm.settings())
    rec = Recorder()
    policy = replace(POLICY, resume_after=0.0)
    r = _reconciler(watcher, port, rec, policy, tmp_path)
    node = clean_slurm.nodes[1]
    try:
        await eventually(lambda: watcher.synced, what="watcher synced")
        d = await r.desk.request(ActionKind.DRAIN, node, reason="PSU swap INC-1")
        assert d.change is not None, d.refused
        assert "syncd: manual, PSU swap INC-1 #" in clean_slurm.node_line(node)
        await r.reconciler.reconcile()  # the planner must not lift a manual drain, even healthy
        assert "DRAIN" in clean_slurm.node_line(node)
        ops = [e for e in rec.of(EventType.ACTION) if e.data["actor"] == "operator"]
        assert [e.data["action"] for e in ops] == ["drain"]
        d = await r.desk.request(ActionKind.RESUME, node)
        assert d.change is not None, d.refused
        await eventually(lambda: "DRAIN" not in clean_slurm.node_line(node), what="resume")
        clean_slurm.run("scontrol", "update", f"NodeName={node}", "State=DRAIN",
                        "Reason=hands off")
        refused = await r.desk.request(ActionKind.RESUME, node)
        assert refused.change is None and "root" in refused.refused
        assert "hands off" in clean_slurm.node_line(node)
    finally:
        task.cancel()
        clean_slurm.run("scontrol", "update", f"NodeName={node}", "State=RESUME", check=False)


class _NeverSynced:
    """A KubeSource whose first list never completed (our own port, not a client library)."""

    def view(self) -> KubeView:
        return KubeView({}, synced=False)

    def take_skips(self) -> list[str]:
        return []


async def test_nothing_is_planned_or_written_before_the_first_full_sync(
    clean_slurm: SlurmSandbox, tmp_path: Path
) -> None:
    port = ScontrolPort(clean_slurm.settings())
    rec = Recorder()
    r = _reconciler(_NeverSynced(), port, rec, POLICY, tmp_path)
    assert await r.reconciler.reconcile() is None
    assert port.runner.executions == 0 and rec.events == []


async def _changed(r: Engine, sim_client: SimClient, node: str) -> None:
    await sim_client.cordon(f"k8s-{node}")
    await eventually(lambda: node in r.triggers.pending, what="the watcher reports the change")


@contextlib.asynccontextmanager
async def _watched(kube_api: client.ApiClient, slurm: SlurmSandbox, tmp: Path,
                   node: str) -> AsyncIterator[tuple[Engine, ScontrolPort]]:
    """An engine on the real watcher and the real scontrol port, synced and past one full
    pass; ``node`` is resumed afterwards."""
    settings = KubeSettings(name_mapping=NameMapping(mode="annotation", key=ANNOTATION))
    port = ScontrolPort(slurm.settings())
    holder: list[Engine] = []
    watcher = Watcher(kube_api, settings, POLICY,
                      on_change=lambda names: holder[0].notify(names) if holder else None)
    r = _reconciler(watcher, port, Recorder(), POLICY, tmp)
    holder.append(r)
    task = asyncio.create_task(watcher.run())
    try:
        await eventually(lambda: watcher.synced, what="watcher synced")
        await r.reconciler.reconcile("resync")  # full read: everything settles
        yield r, port
    finally:
        task.cancel()
        slurm.run("scontrol", "update", f"NodeName={node}", "State=RESUME", check=False)


async def test_a_change_reads_no_node_table_and_confirms_its_drain_with_one_node(
    kube_api: client.ApiClient, sim_client: SimClient, clean_slurm: SlurmSandbox,
    annotated: None, tmp_path: Path,
) -> None:
    """The hot path: a change is planned on the last view; the drain it plans is confirmed by
    ``sinfo -n`` of that one node (a single-node request), never by ``scontrol show node``,
    which loads the whole table."""
    node = clean_slurm.nodes[2]
    async with _watched(kube_api, clean_slurm, tmp_path, node) as (r, port):
        await r.reconciler.reconcile("verify")
        before = len(port.runner.history)
        await _changed(r, sim_client, node)
        await r.reconciler.reconcile("change")
        new = list(port.runner.history)[before:]
        assert not [a for a in new if "show" in a], new
        sinfo = [tuple(a[1:]) for a in new if a[0].endswith("sinfo")]
        assert sinfo == [("-h", "-N", "-n", node, "-O", NODE_FORMAT)], new
        assert "DRAIN" in clean_slurm.node_line(node)


async def test_an_operator_drain_made_after_the_last_read_is_never_overwritten(
    kube_api: client.ApiClient, sim_client: SimClient, clean_slurm: SlurmSandbox,
    annotated: None, tmp_path: Path,
) -> None:
    """The race the confirming read closes: syncd's view says the node is in service, an
    operator drains it in Slurm, then Kubernetes cordons it. Planned on the last view, the
    drain would replace the operator's reason with syncd's (and a later resume would lift
    the operator's drain); confirmed, syncd sees the operator's drain and leaves it."""
    node = clean_slurm.nodes[1]
    async with _watched(kube_api, clean_slurm, tmp_path, node) as (r, _port):
        assert not r.reconciler.reader.last.nodes[node].drained
        clean_slurm.run("scontrol", "update", f"NodeName={node}", "State=DRAIN",
                        "Reason=rma ticket 4711")
        await _changed(r, sim_client, node)
        p = await r.reconciler.reconcile("change")
        assert p is not None
        assert not p.actions, p.actions
        assert "Reason=rma ticket 4711" in clean_slurm.node_line(node)
        confirms = r.reconciler.metrics.confirms
        assert confirms.labels("disagreed")._value.get() == 1
