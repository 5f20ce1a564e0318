"""Build the configured SlurmPort; ``auto`` picks pyslurm only when it can work.

pyslurm is built for exactly one Slurm release (25.11.x for pyslurm 25.11; docs/facts/slurm.md
§6), so ``auto`` uses it only when it imports *and* its major.minor equals the running Slurm's
(``scontrol --version``, which needs no slurmctld). Everything else gets the scontrol backend,
which probes once how to read (``read_format``). ``rest`` talks to slurmrestd only.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

from syncd.core.ports import SlurmPort
from syncd.settings.slurm import SlurmSettings
from syncd.slurm.errors import SlurmError
from syncd.slurm.parse import parse_version
from syncd.slurm.pyslurm_backend import PyslurmPort
from syncd.slurm.rest_backend import make_rest_port
from syncd.slurm.runner import Runner, make_runner
from syncd.slurm.scontrol import ScontrolPort


@dataclass(frozen=True, slots=True)
class PyslurmCheck:
    """Whether pyslurm can be used here, and why not (for logs and the contract tests)."""

    usable: bool
    why: str
    module: Any = None


def _pyslurm_version(mod: Any) -> str:
    version = getattr(mod, "__version__", "")
    if not version and callable(getattr(mod, "version", None)):
        version = mod.version()
    return str(version)


# libslurm calls fatal() (exit 1, no exception) when pyslurm's import finds no readable
# slurm.conf: try the import in a child first, so a bad config can never end the daemon.
_PROBE = "import pyslurm, sys; sys.stdout.write(str(pyslurm.__version__))"


async def _probe_import(settings: SlurmSettings) -> tuple[bool, str]:
    """(True, pyslurm's version) when ``import pyslurm`` works in a child process with
    SLURM_CONF set as syncd would set it; else (False, why)."""
    env = dict(os.environ)
    if settings.conf:
        env["SLURM_CONF"] = settings.conf
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _PROBE, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    except OSError as exc:
        return False, f"cannot start the import probe: {exc.strerror}"
    try:
        out, err = await asyncio.wait_for(proc.communicate(), max(settings.timeout, 30.0))
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return False, "import pyslurm did not finish in a child process"
    if proc.returncode != 0:
        lines = [ln.strip() for ln in err.decode(errors="replace").splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit status {proc.returncode}"
        return False, f"pyslurm does not import: {last[:300]}"
    return True, out.decode(errors="replace").strip()


async def check_pyslurm(settings: SlurmSettings, runner: Runner | None = None) -> PyslurmCheck:
    ok, found = await _probe_import(settings)
    if not ok:
        return PyslurmCheck(False, found)
    if settings.conf:
        # libslurm reads SLURM_CONF once, at import (slurm_init): set it first.
        os.environ["SLURM_CONF"] = settings.conf
    try:
        mod = importlib.import_module("pyslurm")
    except Exception as exc:  # a broken build raising at import time
        return PyslurmCheck(False, f"pyslurm does not import: {type(exc).__name__}: {exc}")
    have = parse_version(_pyslurm_version(mod))
    run = runner or make_runner(settings)
    try:
        slurm = parse_version(await run.run("version", ["scontrol", "--version"]))
    except SlurmError as exc:
        return PyslurmCheck(False, f"cannot tell the running Slurm version: {exc}")
    if have is None or have != slurm:
        return PyslurmCheck(False, f"pyslurm {have} is built for another Slurm than {slurm}")
    return PyslurmCheck(True, f"pyslurm {have} matches Slurm {slurm}", mod)


async def release_of(runner: Runner) -> str:
    """``24.11.5`` from ``scontrol --version`` (``slurm-wlm 24.11.5``), or empty."""
    try:
        text = await runner.run("version", ["scontrol", "--version"])
    except SlurmError:
        return ""
    m = re.search(r"\d+\.\d+(?:\.\d+)?", text)
    return m.group(0) if m else ""


async def read_format(settings: SlurmSettings, runner: Runner) -> str:
    """``text`` or ``json`` for the scontrol backend. ``auto`` is text: ``scontrol --json``
    is missing in 22.05, present in 24.11 and 26.05, and ~10x dearer at 2,000 nodes
    (docs/slurm-backends.md). ``json``
    is probed once with a one-node read; an scontrol without ``--json`` (22.05) refuses it."""
    if settings.read_format != "json":
        return "text"
    try:
        await runner.run("probe", ["scontrol", "--json", "show", "node", "syncd-probe"])
    except SlurmError as exc:
        if "unrecognized option" in str(exc) or "invalid option" in str(exc):
            raise SlurmError("slurm.read_format json: this scontrol has no --json "
                             "(22.05 has none; 24.11 has it); use text or auto") from None
        raise
    return "json"


async def make_slurm_port(settings: SlurmSettings) -> SlurmPort:
    """The port for ``settings.backend``; raises SlurmError when the chosen backend cannot
    work (pyslurm forced but unusable, slurmrestd unreachable or too old)."""
    if settings.backend == "rest":
        return await make_rest_port(settings)
    runner = make_runner(settings)
    if settings.backend != "scontrol":
        found = await check_pyslurm(settings, runner)
        if found.usable:
            return PyslurmPort(settings, found.module, runner=runner)
        if settings.backend == "pyslurm":
            raise SlurmError(f"backend pyslurm requested but unusable: {found.why}")
    return ScontrolPort(settings, runner=runner, read_format=await read_format(settings, runner),
                        slurm_version=await release_of(runner))
