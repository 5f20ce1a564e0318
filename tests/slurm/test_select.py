"""Backend auto-selection and the sandbox script's idempotence, on this host for real."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from syncd.slurm.errors import PermissionDenied, SlurmError
from syncd.slurm.rest_backend import RestPort
from syncd.slurm.select import check_pyslurm, make_slurm_port
from tests.fixtures.slurm import REST_SINCE, SlurmSandbox


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
    out = slurm.script("start", "--nodes", str(len(slurm.nodes)), "--rest")
    assert out.splitlines()[:3] == [f"export SLURM_CONF={slurm.conf}",
                                    f"export PATH={slurm.bin_dir}:$PATH",
                                    f"export SLURMRESTD_URL={slurm.rest_url}"]
    status = slurm.script("status")
    assert "slurmd 8/8" in status and f"Slurm {slurm.release};" in status
    with pytest.raises(RuntimeError, match="already running with 8 nodes"):
        slurm.script("start", "--nodes", "9")


async def test_rest_backend_needs_an_api_that_updates_nodes(slurm: SlurmSandbox) -> None:
    """22.05's slurmrestd serves data_parser v0.0.38 only (GET only): a clear refusal at start;
    on 24.11 and 26.05 the backend starts and names the release."""
    if slurm.version < REST_SINCE:
        with pytest.raises(SlurmError, match=r"offers only v0\.0\.38.*needs v0\.0\.40"):
            await make_slurm_port(slurm.rest_settings())
        return
    port = await make_slurm_port(slurm.rest_settings())
    assert isinstance(port, RestPort)
    try:
        assert port.slurm_version.startswith(f"{slurm.release}.")
        assert int(port.client.version.rsplit(".", 1)[1]) >= 42
    finally:
        await port.client.close()


async def test_rest_backend_with_a_bad_token_is_refused(slurm: SlurmSandbox,
                                                         tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("SLURM_JWT=not-a-token\n")
    settings = slurm.rest_settings()
    bad = replace(settings, rest=replace(settings.rest, token_file=str(token)))
    # 22.05 stops earlier, at its API version (the test above); later ones refuse the token.
    with pytest.raises(PermissionDenied if slurm.version >= REST_SINCE else SlurmError):
        await make_slurm_port(bad)
    missing = replace(settings, rest=replace(settings.rest, token_file=str(tmp_path / "none")))
    with pytest.raises(PermissionDenied, match="cannot read token file"):
        await make_slurm_port(missing)
