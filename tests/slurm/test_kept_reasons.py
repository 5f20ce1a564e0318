"""Ownership on a Slurm that keeps reasons after RESUME (24.11; 25.11 does the same), with the
engine's real reconciler and the real scontrol port (scripts/test runs this on 24.11).

syncd resumes its drain and blanks its reason; then slurmctld drains the node itself (a slurmd
that registers with 4 of 8 GPU files: INVALID_REG) and the slurmd dies twice. syncd must claim
none of it, write nothing, and ``why`` must say who holds the node. Then a resume slurmctld
refuses (its drain over syncd's) fails once, raises one event, and is not retried.
docs/slurm-releases.md has the measurements behind each step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.core.model import ActionKind, EventType, SlurmView
from syncd.core.ownership import make_reason
from syncd.core.policy import Capacity, Causes, Policy, WriteBackoff
from syncd.engine.assembly import Engine, build
from syncd.engine.metrics import Metrics
from syncd.engine.state import StateStore
from syncd.settings.daemon import DaemonSettings
from syncd.slurm.scontrol import ScontrolPort
from tests.fixtures.fakes import MemoryKube, Recorder
from tests.fixtures.slurm import SlurmSandbox, running_sandbox
from tests.fixtures.waiting import WITHIN, eventually
from tests.slurm.kit import read_when

NODE = "gpu001"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmSandbox]:
    # SlurmdTimeout=6: slurmctld calls a dead slurmd "not responding" within seconds.
    with running_sandbox(tmp_path_factory.mktemp("kept"), nodes=2, slurmd_timeout=6) as b:
        yield b


async def until(port: ScontrolPort, check: Callable[[SlurmView], bool], *, what: str,
                within: float = WITHIN) -> SlurmView:
    """Read the port until ``check`` holds; its view."""
    return await eventually(read_when(port, check), what=what, within=within)


def _engine(port: ScontrolPort, kube: MemoryKube, rec: Recorder, tmp: Path) -> Engine:
    policy = Policy(managed_nodes=NODE, resume_after=0.0, capacity=Capacity(hold_jobs=False),
                    causes=Causes(no_kubernetes_node=False),
                    write_backoff=WriteBackoff(base=0.2, max=0.4))
    return build(kube=kube, slurm=port, outbox=rec, policy=policy,
                 daemon=DaemonSettings(debounce=0.0), store=StateStore(tmp),
                 metrics=Metrics(), is_leader=lambda: True)


async def _passes(engine: Engine, port: ScontrolPort, n: int = 3) -> list[ActionKind]:
    """``n`` full passes; the kinds of every action they planned."""
    kinds: list[ActionKind] = []
    for _ in range(n):
        p = await engine.reconciler.reconcile("resync")
        assert p is not None
        kinds.extend(a.kind for a in p.actions)
    return kinds


def _owner(engine: Engine) -> str:
    i = engine.model.inputs()
    assert i is not None
    why = engine.model.why(i, NODE)
    assert why is not None
    return str(why["report"]["owner"])


async def _drain_and_resume(engine: Engine, port: ScontrolPort, kube: MemoryKube) -> None:
    """syncd drains a cordoned node, then resumes it once uncordoned (and blanks its reason)."""
    kube.set(NODE, cordoned=True)
    assert ActionKind.DRAIN in await _passes(engine, port, 1)
    kube.set(NODE, cordoned=False)
    await until(port, lambda v: v.nodes[NODE].drained, what="syncd's drain")
    assert ActionKind.RESUME in await _passes(engine, port, 1)
    await until(port, lambda v: not v.nodes[NODE].unavailable, what="resumed")


async def test_slurmctlds_drains_and_outages_after_a_resume_are_not_syncds(
    box: SlurmSandbox, tmp_path: Path,
) -> None:
    port = ScontrolPort(box.settings())
    kube = MemoryKube(box.nodes)
    engine = _engine(port, kube, Recorder(), tmp_path)
    try:
        await _drain_and_resume(engine, port, kube)
        assert "syncd" not in box.node_line(NODE)  # 24.11 kept a blank, not syncd's text

        # slurmctld drains it: slurmd registers with 4 of 8 GPUs.
        box.slurmd_stop(NODE)
        box.slurmd_start(NODE, gpus=4)
        await until(port, lambda v: "INVALID_REG" in v.nodes[NODE].flags, what="INVALID_REG")
        await _passes(engine, port, 1)
        writes = port.runner.calls["update"]
        assert not {ActionKind.RESUME, ActionKind.DRAIN} & set(await _passes(engine, port))
        assert port.runner.calls["update"] == writes
        assert _owner(engine).startswith("slurmctld (invalid registration")

        view = await port.read()
        assert view.nodes[NODE].unavailable  # still out: nobody of syncd lifted it
    finally:
        await _heal(box, port)


@pytest.mark.slow
async def test_two_slurmd_outages_after_a_resume_are_not_syncds(
    box: SlurmSandbox, tmp_path: Path,
) -> None:
    port = ScontrolPort(box.settings())
    kube = MemoryKube(box.nodes)
    rec = Recorder()
    engine = _engine(port, kube, rec, tmp_path)
    try:
        await _drain_and_resume(engine, port, kube)
        await _passes(engine, port, 1)
        writes = port.runner.calls["update"]
        # Its slurmd dies (slurmctld: not responding, DOWN), comes back, and dies again.
        for _ in range(2):
            box.slurmd_stop(NODE)
            # 60 s: SlurmdTimeout (6 s) plus slurmctld's ping interval, on a loaded machine.
            await until(port, _down, within=60, what="slurmctld notices the dead slurmd")
            assert not set(await _passes(engine, port)) & {ActionKind.RESUME, ActionKind.DRAIN}
            assert not _owner(engine).startswith("syncd")
            box.slurmd_start(NODE)
            await until(port, lambda v: not v.nodes[NODE].not_responding, within=60,
                        what="slurmd back")
            assert not set(await _passes(engine, port)) & {ActionKind.RESUME, ActionKind.DRAIN}
            assert not _owner(engine).startswith("syncd")
        assert port.runner.calls["update"] == writes
        assert not rec.of(EventType.ACTION_FAILED)
        assert "syncd" not in box.node_line(NODE)
    finally:
        await _heal(box, port)


async def test_a_refused_resume_fails_once_and_raises_one_event(
    box: SlurmSandbox, tmp_path: Path,
) -> None:
    """A syncd that lost its state (or one older than the blank reason) meets the 25.11 case of
    issue 12: slurmctld's own drain kept syncd's text from an earlier resume."""
    port = ScontrolPort(box.settings())
    kube = MemoryKube(box.nodes)
    rec = Recorder()
    engine = _engine(port, kube, rec, tmp_path)
    ours = make_reason(engine.reconciler.policy, NODE, "k8s node cordoned")
    keeps = box.version in ((24, 11), (25, 11))  # releases that keep a reason after RESUME
    try:
        box.run("scontrol", "update", f"NodeName={NODE}", "State=DRAIN", f"Reason={ours}")
        box.run("scontrol", "update", f"NodeName={NODE}", "State=RESUME")
        await until(port, lambda v: not v.nodes[NODE].unavailable, what="resumed")
        box.slurmd_stop(NODE)
        box.slurmd_start(NODE, gpus=4)
        view = await until(port, lambda v: "INVALID_REG" in v.nodes[NODE].flags,
                           what="INVALID_REG")
        assert (view.nodes[NODE].reason == ours) is keeps
        kinds = await _passes(engine, port, 1)
        failed = rec.of(EventType.ACTION_FAILED)
        if keeps:
            # The text is syncd's, so syncd resumes; slurmctld refuses (INVAL -> RESUME).
            assert kinds.count(ActionKind.RESUME) == 1
            assert [e.subject for e in failed] == [NODE]
            assert "invalid node state" in str(failed[0].data["error"]).lower()
        else:
            assert ActionKind.RESUME not in kinds and not failed
        # Slurm stored the blank reason with the refusal: the drain is nobody's of syncd's
        # now, so no retry comes even once the write back-off (0.2 s) has passed.
        await until(port, lambda v: not v.nodes[NODE].reason.startswith("syncd"),
                    what="no syncd text")
        for _ in range(4):
            await eventually(lambda: engine.clock.now()
                             > engine.shared.memory.node(NODE).retry_at, what="back-off over")
            assert ActionKind.RESUME not in await _passes(engine, port, 1)
        assert len(rec.of(EventType.ACTION_FAILED)) == len(failed)
        assert _owner(engine).startswith("slurmctld (invalid registration")
    finally:
        await _heal(box, port)


async def _heal(box: SlurmSandbox, port: ScontrolPort) -> None:
    """What an operator does afterwards: a whole slurmd, then RESUME once it registered."""
    box.slurmd_stop(NODE)
    box.slurmd_start(NODE)
    await until(port, lambda v: not {"INVALID_REG", "NOT_RESPONDING"} & v.nodes[NODE].flags,
                within=60, what="slurmd registered whole")
    box.run("scontrol", "update", f"NodeName={NODE}", "State=RESUME", "Reason= ", check=False)
    await until(port, lambda v: not v.nodes[NODE].unavailable, within=60, what="healthy again")


def _down(v: SlurmView) -> bool:
    return v.nodes[NODE].not_responding
