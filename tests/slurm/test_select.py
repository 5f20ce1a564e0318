"""Backend auto-selection and the sandbox script's idempotence, on this host for real."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from syncd.slurm.errors import PermissionDenied, SlurmError
from syncd.slurm.rest_backend import RestPort
from syncd.slurm.scontrol import ScontrolPort
from syncd.slurm.select import check_pyslurm, make_slurm_port
from syncd.slurm.selftest import attempt_for
from tests.fixtures.slurm import RELEASES, REST_SINCE, SlurmSandbox, sandbox_release

ROOT = Path(__file__).resolve().parents[2]


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


async def test_rest_self_test_asks_slurmctld_for_the_tokens_rights(slurm: SlurmSandbox,
                                                                  tmp_path: Path) -> None:
    """The start-up self-test of ``backend: rest`` runs no Slurm command: root's token may
    update nodes; a token for ``nobody`` is refused by slurmctld, a fatal check naming the fix."""
    settings = replace(slurm.rest_settings(), bin_dir="/nonexistent", conf="")
    if slurm.version < REST_SINCE:  # 22.05: refused before any self-test (the test above)
        with pytest.raises(SlurmError, match=r"offers only v0\.0\.38"):
            await make_slurm_port(settings)
        return
    port = await make_slurm_port(settings)
    try:
        result = await attempt_for(port, settings, dry_run=False)()
        assert not result.failures and not result.unreachable, result
        assert [c.name for c in result.checks] == ["controller", "rights"]
        assert result.checks[1].ok and "token user root" in result.checks[1].detail
    finally:
        await port.close()
    nobody = tmp_path / "nobody.jwt"
    nobody.write_text(slurm.run("scontrol", "token", "username=nobody").stdout)
    weak = replace(settings, rest=replace(settings.rest, token_file=str(nobody), user=""))
    port = await make_slurm_port(weak)
    try:
        result = await attempt_for(port, weak, dry_run=False)()
        (bad,) = result.failures
        assert bad.name == "rights" and "refuses node updates" in bad.detail, bad
        assert "token user nobody" in bad.detail and "AdminLevel=Operator" in bad.fix
    finally:
        await port.close()


def test_the_pyslurm_command_fails_in_one_line_where_pyslurm_cannot_run(
        slurm: SlurmSandbox) -> None:
    """scripts/test-pyslurm against this sandbox (no Slurm 25.11, so no usable pyslurm): one
    clear line and exit 1, never a run of skipped tests."""
    env = dict(os.environ, SYNCD_TEST_SLURM_CONF=slurm.conf,
               SYNCD_TEST_SLURM_NODES="gpu[001-005]", SYNCD_PYSLURM_BUILD="0",
               PATH=f"{slurm.bin_dir}:{os.environ['PATH']}")
    r = subprocess.run([str(ROOT / "scripts" / "test-pyslurm")], env=env, capture_output=True,
                       text=True, timeout=300, check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("test-pyslurm: pyslurm backend not usable: "), lines[0]
    assert "passed" not in r.stdout and "skipped" not in r.stdout


async def test_json_reads_where_scontrol_has_json(slurm: SlurmSandbox) -> None:
    """``read_format: json`` is probed once at start: 22.05's scontrol has no --json, a one-line
    refusal; 24.11 and 26.05 read JSON (the contract suite's scontrol-json parameter)."""
    settings = slurm.settings(backend="scontrol", read_format="json")
    if slurm.version < (23, 2):
        with pytest.raises(SlurmError, match="this scontrol has no --json"):
            await make_slurm_port(settings)
        return
    port = await make_slurm_port(settings)
    assert isinstance(port, ScontrolPort) and port.read_format == "json"
    assert set(slurm.nodes) <= set((await port.read()).nodes)
    auto = await make_slurm_port(slurm.settings(backend="scontrol"))
    assert isinstance(auto, ScontrolPort) and auto.read_format == "text"


def test_the_sandbox_runs_the_release_the_session_was_asked_for(
    slurm: SlurmSandbox, request: pytest.FixtureRequest
) -> None:
    """Every worker of a pytest-xdist run (scripts/test) runs the release asked for with
    SYNCD_TEST_SLURM or --slurm: slurmctld itself says which one it is."""
    asked = (request.config.getoption("--slurm") or os.environ.get("PYTEST_SYNCD_TEST_SLURM")
             or sandbox_release())
    assert sandbox_release() == asked
    out = slurm.run("scontrol", "--version").stdout.split()
    assert out[0] in ("slurm", "slurm-wlm"), out  # Debian names its build slurm-wlm
    if asked in RELEASES and not slurm.external_conf:  # "host" or an external one: any release
        assert out[1].startswith(f"{asked}."), out
