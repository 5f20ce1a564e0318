"""Features on 64 nodes in one scontrol call, on its own 64-node sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd.core.batching import batch
from syncd.core.model import ActionKind, NodeChange
from syncd.slurm.scontrol import ScontrolPort
from tests.fixtures.slurm import SlurmSandbox, running_sandbox


@pytest.fixture(scope="module")
def slurm64(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmSandbox]:
    with running_sandbox(tmp_path_factory.mktemp("slurm64"), nodes=64) as box:
        yield box


async def test_read_and_set_features_on_64_nodes_in_one_call(slurm64: SlurmSandbox) -> None:
    port = ScontrolPort(slurm64.settings())
    view = await port.read()
    assert len(view.nodes) == 64
    assert all(n.state.value == "IDLE" and n.gres_gpus == 8 for n in view.nodes.values())

    feats = ("gpu", "gpu_avail_4")
    changes = [NodeChange(n, ActionKind.SET_FEATURES, why="test", features=feats)
               for n in slurm64.nodes]
    (action,) = batch(changes, 100)
    assert action.hostlist == "gpu[001-064]"
    await port.apply(action)
    assert port.runner.calls["update"] == 1
    assert port.runner.history[-1][2] == "NodeName=gpu[001-064]"
    view = await port.read()
    assert all(set(n.active_features) == set(feats) for n in view.nodes.values())


async def test_drain_larger_than_a_batch_is_split(slurm64: SlurmSandbox) -> None:
    port = ScontrolPort(slurm64.settings(max_nodes_per_call=25))
    changes = [NodeChange(n, ActionKind.DRAIN, why="test", reason="syncd: bench")
               for n in slurm64.nodes]
    (action,) = batch(changes, 100)
    await port.apply(action)
    assert port.runner.calls["update"] == 3
    view = await port.read()
    assert all(n.drained and n.reason == "syncd: bench" for n in view.nodes.values())
    (resume,) = batch([NodeChange(n, ActionKind.RESUME, why="test") for n in slurm64.nodes], 100)
    await port.apply(resume)
