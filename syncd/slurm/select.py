"""Build the configured SlurmPort; ``auto`` picks pyslurm only when it can work.

pyslurm is built for exactly one Slurm release (25.11.x for pyslurm 25.11; docs/facts/slurm.md
§6), so ``auto`` uses it only when it imports *and* its major.minor equals the running Slurm's
(``scontrol --version``, which needs no slurmctld). Everything else gets the scontrol backend.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from syncd.core.ports import SlurmPort
from syncd.settings.slurm import SlurmSettings
from syncd.slurm.errors import SlurmError
from syncd.slurm.parse import parse_version
from syncd.slurm.pyslurm_backend import PyslurmPort
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


async def check_pyslurm(settings: SlurmSettings, runner: Runner | None = None) -> PyslurmCheck:
    try:
        mod = importlib.import_module("pyslurm")
    except Exception as exc:  # ImportError, or a broken build raising at import time
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


async def make_slurm_port(settings: SlurmSettings) -> SlurmPort:
    """The port for ``settings.backend``; raises SlurmError when pyslurm is forced but unusable."""
    runner = make_runner(settings)
    if settings.backend == "scontrol":
        return ScontrolPort(settings, runner=runner)
    found = await check_pyslurm(settings, runner)
    if found.usable:
        return PyslurmPort(settings, found.module, runner=runner)
    if settings.backend == "pyslurm":
        raise SlurmError(f"backend pyslurm requested but unusable: {found.why}")
    return ScontrolPort(settings, runner=runner)
