"""The start-up self-test: can this process's Slurm client use the config, reach slurmctld, and
change nodes there? Asked before the first write, so a wrong image or uid fails at start with
one line naming the fix, not at the first drain at 3 a.m.

Rights are tested by asking slurmctld, not by comparing uids: a no-op ``scontrol update`` of a
node name that does not exist (random, ``syncd-rights-probe-<hex>``). slurmctld checks the
caller's rights before it looks the node up, so root, SlurmUser and a user with
AdminLevel>=Operator get "Invalid node name specified" and everyone else "Invalid user id"
(measured on the sandbox, docs/slinky.md). Nothing can change: the node does not exist. The
SlurmUser comparison alone would refuse an Operator-level user and cannot see what uid a
credential carries (auth/slurm, munge); it is reported alongside, for on-call.

Client versions follow https://slurm.schedmd.com/upgrades.html: slurmctld accepts commands of
its own release and of the two (three from 24.11 on) releases before it, never newer ones.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pwd
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from syncd.core.ports import SlurmPort
from syncd.settings.slurm import SlurmSettings
from syncd.slurm.errors import PermissionDenied, SlurmError, Timeout, UnknownNode, Unreachable
from syncd.slurm.parse import parse_version
from syncd.slurm.rest_backend import RestPort
from syncd.slurm.rest_client import RestClient
from syncd.slurm.runner import Runner, make_runner

#: Major releases in order; later ones follow the six-month cycle (YY.05, YY.11) of 24.05 on.
_RELEASES = ((20, 2), (20, 11), (21, 8), (22, 5), (23, 2), (23, 11), (24, 5), (24, 11))


def _previous(v: tuple[int, int]) -> tuple[int, int] | None:
    if v in _RELEASES:
        i = _RELEASES.index(v)
        return _RELEASES[i - 1] if i else None
    if v > _RELEASES[-1]:
        return (v[0], 5) if v[1] == 11 else (v[0] - 1, 11)
    return None


def compatible(controller: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    """The client releases this slurmctld accepts: itself and the releases before it."""
    out = [controller]
    for _ in range(3 if controller >= (24, 11) else 2):
        prev = _previous(out[-1])
        if prev is None:
            break
        out.append(prev)
    return tuple(out)


def _release(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]:02d}"


def config_value(text: str, key: str) -> str:
    """One ``Key = value`` of ``scontrol show config``; empty if absent."""
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip()
    return ""


@dataclass(frozen=True, slots=True)
class Check:
    """One result: ``fatal`` failures stop syncd at start; others are shown as warnings."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    fatal: bool = False

    def line(self) -> str:
        return f"{self.name}: {self.detail}" + (f"; fix: {self.fix}" if self.fix else "")


@dataclass(frozen=True, slots=True)
class SelfTest:
    """All checks of one attempt; ``unreachable`` is set when slurmctld did not answer."""

    checks: tuple[Check, ...]
    unreachable: str = ""

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.fatal)

    def summary(self) -> tuple[bool, str]:
        """(ok, one line) for /readyz and ``syncd status``."""
        if self.unreachable:
            return False, f"waiting for slurmctld: {self.unreachable}"
        bad = [c for c in self.checks if not c.ok]
        if bad:
            return not self.failures, " | ".join(c.line() for c in bad)
        return True, "; ".join(c.detail for c in self.checks)


def _whoami() -> tuple[int, str]:
    uid = os.geteuid()
    try:
        return uid, pwd.getpwuid(uid).pw_name
    except KeyError:
        return uid, f"uid {uid}"


async def self_test(runner: Runner, *, conf: str, dry_run: bool = False,
                    backend: str = "scontrol") -> SelfTest:
    """One attempt; never raises for Slurm's answers (each becomes a check)."""
    checks: list[Check] = []
    if conf and not await asyncio.to_thread(os.path.isfile, conf):
        return SelfTest((Check("config", False, f"slurm.conf {conf} does not exist",
                               "mount slurm.conf there or point slurm.conf at it", True),))
    try:
        # The client parses slurm.conf even for --version (22.05 does), so a key newer than
        # the client fails here already, with the client's own message.
        client = parse_version(await runner.run("version", ["scontrol", "--version"]))
        text = await runner.run("show_config", ["scontrol", "show", "config"])
    except (Unreachable, Timeout) as exc:
        return SelfTest((), unreachable=str(exc))
    except SlurmError as exc:
        if "cannot execute" in str(exc):
            return SelfTest((Check("client", False, f"the Slurm client does not run: {exc}",
                                   "install Slurm's client commands or set slurm.bin_dir",
                                   True),))
        shown = f" {conf}" if conf else ""
        return SelfTest((Check(
            "config", False, f"the Slurm client cannot use slurm.conf{shown}: {exc}",
            "give syncd a Slurm client of slurmctld's release (image build argument "
            "SLURM_VERSION, docs/helm.md) or a slurm.conf this client can parse", True),))
    controller = parse_version(config_value(text, "SLURM_VERSION"))
    slurm_user = config_value(text, "SlurmUser") or "unknown"
    checks.append(Check("controller", True, f"slurmctld {config_value(text, 'SLURM_VERSION')} "
                        f"answers; SlurmUser {slurm_user}"))
    checks.append(_version("client", "scontrol", client, controller))
    if backend == "pyslurm":
        checks.append(_version("library", "pyslurm", _pyslurm(), controller))
    rights = await _rights(runner, slurm_user, dry_run)
    if rights is None:
        return SelfTest(tuple(checks), unreachable="slurmctld stopped answering")
    checks.append(rights)
    return SelfTest(tuple(checks))


def _pyslurm() -> tuple[int, int] | None:
    try:
        mod = importlib.import_module("pyslurm")
    except Exception:  # the backend factory reported it already
        return None
    return parse_version(str(getattr(mod, "__version__", "")))


def _version(name: str, what: str, have: tuple[int, int] | None,
             controller: tuple[int, int] | None) -> Check:
    if have is None or controller is None:
        return Check(name, True, f"cannot tell the {what} or slurmctld version")
    ok = compatible(controller)
    words = f"{what} {_release(have)} with slurmctld {_release(controller)}"
    if have in ok:
        return Check(name, True, words)
    why = ("newer than slurmctld" if have > controller else
           f"outside slurmctld's window ({', '.join(_release(v) for v in ok)})")
    return Check(name, False, f"{words}: {why}",
                 f"use a Slurm client of release {_release(controller)} (image build "
                 f"argument SLURM_VERSION={_release(controller)}, docs/helm.md)", True)


async def rest_self_test(client: RestClient, *, dry_run: bool = False) -> SelfTest:
    """The rest backend's attempt: slurmrestd and slurmctld answer (``ping/``) and the token's
    user may update nodes (the same no-op update of a node that does not exist, as a
    ``POST nodes/``). No Slurm client or slurm.conf is involved, so no version window."""
    try:
        await client.request("ping", "GET", client.path("ping/"))
    except (Unreachable, Timeout) as exc:
        return SelfTest((), unreachable=str(exc))
    except SlurmError as exc:
        return SelfTest((Check("controller", False, f"slurmrestd refuses the token: {exc}",
                               "give syncd a current JWT for SlurmUser or root "
                               "(slurm.rest.token_file, docs/slurm-backends.md)", True),))
    checks = [Check("controller", True, f"slurmctld {client.release or '?'} answers through "
                    f"slurmrestd {client.version}; token user {client.user or '?'}")]
    rights = await _rights(client, "", dry_run, token_user=client.user or "?")
    if rights is None:
        return SelfTest(tuple(checks), unreachable="slurmctld stopped answering")
    return SelfTest((*checks, rights))


async def _probe(via: Runner | RestClient, probe: str) -> None:
    if isinstance(via, RestClient):
        await via.request("rights_probe", "POST", via.path("nodes/"),
                          {"name": [probe], "comment": "syncd rights probe"})
    else:
        await via.run("rights_probe", ["scontrol", "update", f"NodeName={probe}",
                                       "Comment=syncd rights probe"])


async def _rights(via: Runner | RestClient, slurm_user: str, dry_run: bool,
                  token_user: str = "") -> Check | None:
    """Ask slurmctld whether syncd may update nodes: as this process's uid, or (the rest
    backend) as the token's user."""
    uid, user = _whoami()
    me, fix = f"uid {uid} ({user})", (f"run syncd as root or as SlurmUser {slurm_user} "
                                      "(chart: runAsUser), or give ")
    if token_user:
        user, me = token_user, f"token user {token_user}"
        fix = "give syncd a JWT for root or SlurmUser (slurm.rest.token_file), or give "
    probe = f"syncd-rights-probe-{secrets.token_hex(4)}"
    try:
        await _probe(via, probe)
    except UnknownNode:
        return Check("rights", True, f"slurmctld accepts node updates from {me}")
    except PermissionDenied as exc:
        return Check("rights", False, f"slurmctld refuses node updates from {me}: {exc}",
                     f"{fix}{user} AdminLevel=Operator in Slurm's accounting",
                     fatal=not dry_run)
    except (Unreachable, Timeout):
        return None
    except SlurmError as exc:
        return Check("rights", True, f"could not tell whether {me} may update nodes: {exc}")
    return Check("rights", True, f"slurmctld accepted a node update from {me}")


def attempt_for(port: SlurmPort, settings: SlurmSettings, *,
                dry_run: bool) -> Callable[[], Awaitable[SelfTest]]:
    """One self-test attempt for ``port``'s backend: through slurmrestd for ``rest``, else
    through the Slurm client."""
    if isinstance(port, RestPort):
        client = port.client
        return lambda: rest_self_test(client, dry_run=dry_run)
    runner = make_runner(settings)
    return lambda: self_test(runner, conf=settings.conf, dry_run=dry_run, backend=port.backend)


async def wait_for_self_test(attempt: Callable[[], Awaitable[SelfTest]], *, within: float,
                             every: float = 2.0,
                             seen: Callable[[SelfTest], None] = lambda _: None) -> SelfTest:
    """Attempts until slurmctld answers or ``within`` seconds pass (a sidecar starts before
    slurmctld does); each attempt is handed to ``seen`` (for /readyz)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await attempt()
        seen(result)
        if not result.unreachable or loop.time() + every > deadline:
            return result
        await asyncio.sleep(every)
