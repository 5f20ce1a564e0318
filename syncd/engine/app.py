"""``syncd run``: builds every part from the settings, runs them, and shuts down cleanly.

SIGTERM (or SIGINT) stops the triggers, lets the in-flight reconcile finish its batch, flushes
the outbox (bounded by ``flush_timeout``), saves the memory and releases the lease, in that
order, so a standby takes over at once and no event is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from syncd.core.ports import SlurmPort
from syncd.engine import gcwatch
from syncd.engine.assembly import Engine, build
from syncd.engine.guard import Guard
from syncd.engine.http import Api
from syncd.engine.leader import AlwaysLeader, LeaderElector
from syncd.engine.livemetrics import export_live
from syncd.engine.metrics import Metrics
from syncd.engine.sockets import operator_socket
from syncd.engine.state import StateStore
from syncd.events.outbox import Outbox
from syncd.events.sinks import make_sinks
from syncd.kube.client import make_api_client
from syncd.kube.lease import KubeLeases
from syncd.kube.marker import KubeMarker
from syncd.kube.watcher import Watcher
from syncd.settings import Settings
from syncd.slurm.select import make_slurm_port
from syncd.slurm.selftest import SelfTest, attempt_for, wait_for_self_test

log = logging.getLogger(__name__)


class StartupError(Exception):
    """syncd cannot start; the message names the step and the cause, on one line."""


@contextlib.asynccontextmanager
async def _step(what: str) -> AsyncIterator[None]:
    try:
        yield
    except StartupError:
        raise
    except Exception as exc:  # any failure while building a part is a startup error
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise StartupError(f"{what}: {detail}") from exc


def identity_of(settings: Settings) -> str:
    return settings.daemon.leader_election.identity or f"{socket.gethostname()}-{os.getpid()}"


async def run(settings: Settings, *, flush_timeout: float = 10.0) -> int:
    opened: list[Callable[[], Awaitable[object]]] = []
    try:
        return await _run(settings, flush_timeout, opened)
    except StartupError:
        # What start-up opened before the failing step is closed here, so the one-line error
        # is not followed by aiohttp's "Unclosed client session" warnings at exit.
        for close in reversed(opened):
            with contextlib.suppress(Exception):
                await close()
        raise


async def _run(settings: Settings, flush_timeout: float,
               opened: list[Callable[[], Awaitable[object]]]) -> int:
    d = settings.daemon
    identity = identity_of(settings)
    state_dir = Path(d.state_dir)
    async with _step(f"state directory {state_dir}"):
        await asyncio.to_thread(state_dir.mkdir, parents=True, exist_ok=True)
    spool_dir = Path(settings.events.spool_dir or state_dir / "spool")
    metrics = Metrics()
    opened.append(gcwatch.watch(metrics))

    async with _step("Kubernetes client (kubernetes.kubeconfig / in-cluster config)"):
        kc = settings.kubernetes.kubeconfig
        if kc and not await asyncio.to_thread(Path(kc).is_file):
            raise StartupError(f"kubernetes.kubeconfig: {kc} does not exist")
        api = await make_api_client(settings.kubernetes)
        opened.append(api.close)
    async with _step("Slurm backend"):
        slurm = await make_slurm_port(settings.slurm)
        opened.append(slurm.close)
    metrics.slurm_info.labels(slurm.slurm_version or "unknown", slurm.backend).set(1)
    async with _step(f"event spool {spool_dir}"):
        outbox = Outbox(settings.events, cluster=settings.cluster, instance=identity,
                        spool_dir=spool_dir,
                        sinks=make_sinks(settings.events, client_id=identity))
    async with _step("daemon.operator_token_file"):
        token = await asyncio.to_thread(_read_token, d.operator_token_file)
    elector: LeaderElector | AlwaysLeader
    if d.leader_election.enabled:
        le = d.leader_election
        elector = LeaderElector(KubeLeases(api, name=le.lease_name, namespace=le.lease_namespace),
                                identity=identity, lease_duration=le.lease_duration,
                                renew_every=le.renew_every)
    else:
        elector = AlwaysLeader()

    # The watcher is built before the engine it notifies; wire the callback afterwards.
    engine: Engine | None = None

    def changed(names: frozenset[str]) -> None:
        if engine is not None:
            engine.notify(names)

    watcher = Watcher(api, settings.kubernetes, settings.policy, on_change=changed)
    # The mirror's writer exists only when it is on: syncd writes nothing else to Nodes.
    marker = KubeMarker(api) if settings.policy.mirror.enabled else None
    engine = build(kube=watcher, slurm=slurm, outbox=outbox, policy=settings.policy,
                   daemon=d, store=StateStore(state_dir), metrics=metrics,
                   is_leader=elector.is_leader, marker=marker, wal=outbox)
    if isinstance(elector, LeaderElector):
        e = engine
        elector.on_change = lambda _leading: e.notify()
    export_live(metrics, watcher, outbox)

    checks = _Checks()
    http = Api(engine.model, engine.desk, metrics,
               Guard(allowed_uids=d.operator_uids, token=token),
               identity=identity, holder=lambda: elector.holder,
               health=lambda: {"spool": outbox.health(), **checks.health()},
               info=lambda: {"event_sinks": {n: st.state for n, st in outbox.stats().items()}})
    runner = web.AppRunner(http.app(), access_log=None)
    await runner.setup()
    opened.append(runner.cleanup)
    host, _, port = d.listen.rpartition(":")
    site = web.TCPSite(runner, host or "0.0.0.0", int(port))
    async with _step(f"HTTP listener {d.listen}"):
        await site.start()
    sock_path = d.socket_path()
    async with _step(f"operator socket {sock_path} (daemon.operator_socket)"):
        await operator_socket(runner, sock_path, mode=int(d.operator_socket_mode, 8),
                              group=d.operator_socket_group)
    try:  # before the first write; /livez answers meanwhile (a sidecar's startup probe)
        await _self_test(settings, slurm, checks)
    except StartupError:
        await runner.cleanup()
        await asyncio.to_thread(_unlink, sock_path)
        await api.close()
        raise
    log.info("syncd started", extra={
        "identity": identity, "listen": d.listen, "operator_socket": sock_path,
        "slurm_backend": slurm.backend, "slurm_version": slurm.slurm_version,
        "dry_run": d.dry_run,
        "leader_election": d.leader_election.enabled})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    coros = {"watcher": watcher.run(), "outbox": outbox.run(), "leader": elector.run(),
             **engine.loops()}
    tasks = {name: asyncio.create_task(c, name=name) for name, c in coros.items()}
    stopper = asyncio.create_task(stop.wait(), name="stop")
    done, _ = await asyncio.wait({*tasks.values(), stopper},
                                 return_when=asyncio.FIRST_COMPLETED)
    exit_code = 0
    for t in done:
        if t is not stopper and not t.cancelled() and t.exception() is not None:
            log.error("component failed", exc_info=t.exception(),
                      extra={"component": t.get_name()})
            exit_code = 1

    log.info("shutting down")
    engine.stop()
    with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(tasks["reconciler"], timeout=30)  # finishes its batch
    await engine.close()
    for name in ("watcher", "leader", "state-saver"):
        tasks[name].cancel()
    flushed = await outbox.aclose(flush_timeout=flush_timeout)
    await elector.release()
    for t in tasks.values():
        t.cancel()
    await asyncio.gather(*tasks.values(), stopper, return_exceptions=True)
    await runner.cleanup()
    await asyncio.to_thread(_unlink, sock_path)
    await api.close()
    await slurm.close()  # the rest backend's HTTP session
    log.info("stopped", extra={"outbox_flushed": flushed, "backlog": outbox.backlog()})
    return exit_code


class _Checks:
    """The latest self-test result, for /readyz and ``syncd status``."""

    def __init__(self) -> None:
        self.result: SelfTest | None = None

    def health(self) -> dict[str, tuple[bool, str]]:
        if self.result is None:
            return {"selftest": (False, "the Slurm self-test has not run yet")}
        return {"selftest": self.result.summary()}

    def update(self, result: SelfTest) -> None:
        self.result = result


async def _self_test(settings: Settings, slurm: SlurmPort, checks: _Checks) -> None:
    """Slurm client, config, slurmctld, rights and versions (syncd/slurm/selftest.py); a
    failure is a StartupError of one line per failed check, each naming the fix."""
    s = settings.slurm
    attempt = attempt_for(slurm, s, dry_run=settings.daemon.dry_run)
    result = await wait_for_self_test(attempt, within=s.startup_wait, seen=checks.update)
    if result.unreachable:
        raise StartupError(
            f"Slurm self-test: controller: slurmctld did not answer within "
            f"{s.startup_wait:g}s (slurm.startup_wait): {result.unreachable}; fix: check "
            "SlurmctldHost in slurm.conf, the network to slurmctld and the auth key or socket")
    if result.failures:
        raise StartupError("\n".join(f"Slurm self-test: {c.line()}" for c in result.failures))
    for c in result.checks:
        if not c.ok:
            log.warning("Slurm self-test: %s", c.line())
    log.info("Slurm self-test passed", extra={"checks": [c.line() for c in result.checks]})


def _read_token(path: str) -> str:
    if not path:
        return ""
    token = Path(path).read_text(encoding="utf-8").strip()
    if len(token) < 16:
        raise StartupError(f"daemon.operator_token_file: {path} holds fewer than 16 characters")
    return token


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
