"""Backend auto-selection and the sandbox script's idempotence, on this host for real."""

from __future__ import annotations

import pytest

from syncd.slurm.errors import SlurmError
from syncd.slurm.select import check_pyslurm, make_slurm_port
from tests.fixtures.slurm import SlurmSandbox


async def test_auto_picks_scontrol_when_pyslurm_cannot_work(slurm: SlurmSandbox) -> None:
    found = await check_pyslurm(slurm.settings())
    assert not found.usable
    assert found.why
    port = await make_slurm_port(slurm.settings(backend="auto"))
    assert port.backend == "scontrol"
    assert set(slurm.nodes) <= set((await port.read()).nodes)


async def test_forced_pyslurm_fails_loudly(slurm: SlurmSandbox) -> None:
    with pytest.raises(SlurmError, match="pyslurm"):
        await make_slurm_port(slurm.settings(backend="pyslurm"))


def test_sandbox_start_is_idempotent(slurm: SlurmSandbox) -> None:
    # Without --slurm the sandbox keeps its release; start prints lines to eval.
    out = slurm.script("start", "--nodes", str(len(slurm.nodes)))
    assert out.splitlines() == [f"export SLURM_CONF={slurm.conf}",
                                f"export PATH={slurm.bin_dir}:$PATH"]
    status = slurm.script("status")
    assert "slurmd 8/8" in status and f"Slurm {slurm.release};" in status
    with pytest.raises(RuntimeError, match="already running with 8 nodes"):
        slurm.script("start", "--nodes", "9")
