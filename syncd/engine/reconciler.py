"""The reconcile loop: wake on change (debounced), on a timer coming due, or on the periodic
resync; read Slurm once, plan, write (when leader and not dry-run), publish, remember.

All decisions are the pure planner's; this module only sequences I/O around it. Writes and
operator requests are serialised by one lock, so an in-flight batch always finishes before a
shutdown or a manual drain touches the same state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from syncd.core import manual
from syncd.core.memory import reset_breaker
from syncd.core.model import (
    Action,
    ActionKind,
    DriftEvent,
    EventType,
    KubeView,
    NodeChange,
    SlurmView,
)
from syncd.core.planner import Plan, plan
from syncd.core.policy import Policy
from syncd.core.ports import EventPublisher, KubeSource, SlurmPort
from syncd.core.snapshots import kube_json, slurm_json
from syncd.core.timers import next_deadline
from syncd.engine.debounce import settle
from syncd.engine.metrics import Metrics
from syncd.engine.state import StateStore
from syncd.slurm.errors import SlurmError

log = logging.getLogger(__name__)
HISTORY = 20
VERIFY_AFTER = 1.0
#: An incremental read is used while the last full read is this young...
FULL_READ_MAX_AGE = 60.0
#: ...and it names at most this many nodes; beyond, one full read is cheaper.
PARTIAL_READ_MAX = 500


@dataclass
class Status:
    """What /readyz and the runbook read; updated by every reconcile."""

    slurm_ok: bool = False
    slurm_error: str = ""
    last_view: SlurmView = field(default_factory=lambda: SlurmView({}, ok=False))


class Reconciler:
    def __init__(
        self,
        *,
        kube: KubeSource,
        slurm: SlurmPort,
        events: EventPublisher,
        policy: Policy,
        state: StateStore,
        metrics: Metrics,
        is_leader: Callable[[], bool],
        dry_run: bool = False,
        debounce: float = 0.05,
        debounce_max: float = 0.5,
        resync_every: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kube = kube
        self.slurm = slurm
        self.events = events
        self.policy = policy
        self.state = state
        self.metrics = metrics
        self.is_leader = is_leader
        self.dry_run = dry_run
        self.debounce = debounce
        self.debounce_max = debounce_max
        self.resync_every = resync_every
        self.clock = clock
        self.memory = state.load()
        self.status = Status()
        self.history: dict[str, deque[tuple[float, str]]] = {}
        self.lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._dirty = True
        self._verify_at: float | None = None
        self._problems: frozenset[str] = frozenset()
        self._known: frozenset[str] = frozenset()
        self._known_sizes = (-1, -1)
        self._known_at = 0.0
        self._ever_synced = False
        self._changed: set[str] = set()
        self._written: set[str] = set()
        self._full_at = -FULL_READ_MAX_AGE
        self._full_needed = False

    # --- triggers ---------------------------------------------------------------------------

    def notify(self, changed: Iterable[str] = ()) -> None:
        """Called by the watcher on every relevant change; cheap and non-blocking."""
        self._changed.update(changed)
        self._wake.set()

    async def probe_slurm(self, every: float) -> None:
        """Notice a slurmctld restart (which resets features to slurm.conf) or outage within
        ``every`` seconds, with one cheap call, instead of at the next resync."""
        while not self._stopping.is_set():
            await asyncio.sleep(every)
            try:
                boot = await self.slurm.boot_time()
            except SlurmError as exc:
                if self.status.slurm_ok:
                    log.error("Slurm unreachable", extra={"error": str(exc)})
                self.status.slurm_ok = False
                self.status.slurm_error = str(exc)
                self.metrics.slurm_up.set(0)
                continue
            if not self.status.slurm_ok or (boot and boot != self.memory.slurm_boot_time):
                log.info("slurmctld restarted or reachable again; reconciling",
                         extra={"boot_time": boot})
                self._full_needed = True  # every node's features may have been reset
                self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        next_resync = time.monotonic()
        while not self._stopping.is_set():
            now_m = time.monotonic()
            timeout = next_resync - now_m
            due = next_deadline(self.memory, self.policy, self.clock())
            if due is not None:
                timeout = min(timeout, due - self.clock() + 0.01)
            if self._verify_at is not None:
                timeout = min(timeout, self._verify_at - now_m)
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, timeout))
                trigger = "change"
            except TimeoutError:
                if time.monotonic() >= next_resync:
                    trigger = "resync"
                elif self._verify_at is not None and time.monotonic() >= self._verify_at:
                    trigger = "verify"
                else:
                    trigger = "timer"
            self._verify_at = None
            if self._stopping.is_set():
                break
            if trigger == "change" and self.debounce > 0:
                await settle(lambda: len(self._changed), self.debounce, self.debounce_max)
            self._wake.clear()
            if trigger == "resync":
                next_resync = time.monotonic() + self.resync_every
            try:
                await self.reconcile(trigger)
            except Exception:
                # A bug in one pass must not stop reconciling; the next pass re-reads both
                # views from scratch.
                log.exception("reconcile failed")
                self.metrics.reconciles.labels("failed").inc()
                await asyncio.sleep(1.0)

    # --- one pass ---------------------------------------------------------------------------

    async def read_slurm(self) -> SlurmView:
        try:
            view = await self.slurm.read()
        except SlurmError as exc:
            self.metrics.slurm_calls.labels("read", "failed").inc()
            self.metrics.slurm_up.set(0)
            if self.status.slurm_ok or not self.status.slurm_error:
                log.error("cannot read Slurm", extra={"error": str(exc)})
            self.status.slurm_ok = False
            self.status.slurm_error = str(exc)
            return SlurmView({}, ok=False)
        self.metrics.slurm_calls.labels("read", "ok").inc()
        self.metrics.slurm_up.set(1)
        if not self.status.slurm_ok and self.status.slurm_error:
            log.info("Slurm reachable again")
        self.status.slurm_ok = True
        self.status.slurm_error = ""
        self.status.last_view = view
        return view

    async def _read_for(self, trigger: str) -> SlurmView:
        """A full read, or only the nodes this pass can decide anything about.

        Nodes in the planner's settled cache keep their (identical) Slurm objects and are
        skipped by the planner, so their Slurm state is never used to decide; every node the
        planner does evaluate (changed in Kubernetes, just written, or with a timer running)
        is read fresh. Resyncs, timers and slurmctld restarts always read everything.
        """
        last = self.status.last_view
        names = self._changed | self._written
        self._changed, self._written = set(), set()
        fresh = time.monotonic() - self._full_at < FULL_READ_MAX_AGE
        full_needed, self._full_needed = self._full_needed, False
        if trigger in ("change", "verify") and fresh and last.ok and not full_needed:
            settled = self.memory.settled
            wanted = {n for n in names if n in last.nodes}
            wanted.update(n for n in last.nodes if n not in settled)
            if len(wanted) <= PARTIAL_READ_MAX:
                if not wanted:
                    return last
                try:
                    part = await self.slurm.read_nodes(sorted(wanted))
                except SlurmError as exc:
                    log.warning("partial Slurm read failed; reading everything",
                                extra={"error": str(exc)})
                else:
                    self.metrics.slurm_calls.labels("read_nodes", "ok").inc()
                    nodes = dict(last.nodes)
                    nodes.update(part)
                    view = SlurmView(nodes=nodes, ok=True, boot_time=last.boot_time)
                    self.status.last_view = view
                    return view
        view = await self.read_slurm()
        if view.ok:
            self._full_at = time.monotonic()
        return view

    async def reconcile(self, trigger: str = "manual") -> Plan | None:
        async with self.lock:
            started = time.perf_counter()
            k8s = self.kube.view()
            self.metrics.synced.set(1 if k8s.synced else 0)
            if not k8s.synced and not self._ever_synced:
                # Until the first complete list, the view lacks nodes and pods: capacity from
                # a partial pod list would advertise GPUs that pods use, and would be written
                # twice. Nothing is planned until then (drains would be withheld anyway).
                return None
            self._ever_synced = True
            slurm = await self._read_for(trigger)
            if not slurm.ok:
                return None
            now = self.clock()
            p = plan(k8s, slurm, self.policy, self.memory, now)
            leader = self.is_leader()
            self.metrics.leader.set(1 if leader else 0)
            # A standby plans too, so its timers continue where the leader was at a takeover,
            # but it writes and publishes nothing (the leader does).
            self.memory = p.memory
            if leader:
                events = [*p.events, *self._skip_events(k8s),
                          *await self._execute(p.changes, p.actions, k8s, slurm, "planner")]
                if p.actions and not self.dry_run:
                    # Slurm is not watched: read it back shortly to confirm what was written
                    # (and resolve the drift) instead of waiting for the next resync.
                    self._verify_at = time.monotonic() + VERIFY_AFTER
                self._publish(events)
                self._forget_vanished(k8s, slurm)
            self._record(p, now)
            self.metrics.reconciles.labels(trigger).inc()
            self.metrics.reconcile_seconds.observe(time.perf_counter() - started)
            if p.changes or p.events or self._dirty:
                await self.state.save(self.memory)
                self._dirty = False
            return p

    async def _execute(
        self,
        changes: Sequence[NodeChange],
        actions: Sequence[Action],
        k8s: KubeView,
        slurm: SlurmView,
        actor: str,
    ) -> list[DriftEvent]:
        why = {(c.node, c.kind): c.why for c in changes}
        out: list[DriftEvent] = []
        for action in actions:
            outcome, error = "ok", ""
            if self.dry_run:
                outcome = "dry_run"
            else:
                try:
                    await self.slurm.apply(action)
                    self.metrics.slurm_calls.labels(action.kind.value, "ok").inc()
                except SlurmError as exc:
                    outcome, error = "failed", str(exc)
                    self.metrics.slurm_calls.labels(action.kind.value, "failed").inc()
                    log.error("Slurm write failed", extra={
                        "action": action.kind.value, "hostlist": action.hostlist,
                        "error": error})
            self.metrics.actions.labels(action.kind.value, outcome).inc(len(action.nodes))
            if outcome != "failed":
                log.info(f"{action.kind.value} {action.hostlist}", extra={
                    "node": action.hostlist, "action": action.kind.value,
                    "reason": action.reason, "outcome": outcome})
            self._written.update(action.nodes)
            for node in action.nodes:
                out.append(DriftEvent(
                    EventType.ACTION_FAILED if outcome == "failed" else EventType.ACTION,
                    node,
                    {
                        "action": action.kind.value,
                        "why": why.get((node, action.kind), ""),
                        "reason": action.reason,
                        "features": list(action.features),
                        "hold_gpus": action.hold_gpus,
                        "hostlist": action.hostlist,
                        "outcome": outcome,
                        "error": error,
                        "kubernetes": kube_json(k8s.nodes.get(node)),
                        "slurm": slurm_json(slurm.nodes.get(node)),
                        "actor": actor,
                    },
                ))
        return out

    def _skip_events(self, k8s: KubeView) -> list[DriftEvent]:
        """Refused Kubernetes input as events: bogus values as they come, name-mapping
        problems once each, when they first appear."""
        out = [DriftEvent(EventType.SKIP, "", {"why": "invalid value skipped",
                                               "value": w[:500], "source": "kubernetes"})
               for w in self.kube.take_skips()]
        problems = frozenset(k8s.problems)
        for problem in sorted(problems - self._problems):
            out.append(DriftEvent(EventType.SKIP, "", {
                "why": "Kubernetes node not mapped to a Slurm node", "value": problem[:500],
                "source": "name_mapping"}))
        self._problems = problems
        return out

    def _forget_vanished(self, k8s: KubeView, slurm: SlurmView) -> None:
        """A node gone from both worlds: clear its retained state for subscribers."""
        # A node leaving both worlds changes a count; a rename that keeps both counts is
        # caught by the once-a-minute recheck. This keeps two 10k-name sets off every pass.
        sizes = (len(k8s.nodes), len(slurm.nodes))
        if sizes == self._known_sizes and time.monotonic() - self._known_at < 60.0:
            return
        self._known_sizes, self._known_at = sizes, time.monotonic()
        known = frozenset(k8s.nodes) | frozenset(slurm.nodes)
        if known == self._known:
            return
        for name in self._known - known:
            self.events.remove_node(name, "node is in neither Kubernetes nor Slurm any more")
        self._known = known

    def _publish(self, events: Sequence[DriftEvent]) -> None:
        if not events:
            return
        self.events.publish(events)
        for e in events:
            self.metrics.events.labels(e.type.value).inc()
            if e.subject:
                h = self.history.setdefault(e.subject, deque(maxlen=HISTORY))
                h.append((self.clock(), _summary(e)))

    def _record(self, p: Plan, now: float) -> None:
        self.metrics.drifted.set(sum(1 for m in self.memory.nodes.values() if m.drift_key))
        self.metrics.withheld.set(len(p.withheld))
        self.metrics.breaker_open.set(1 if self.memory.breaker.open else 0)
        for e in p.events:
            if e.type is EventType.BREAKER:
                log.warning("breaker: " + str(e.data.get("why", "")),
                            extra={"state": e.data.get("state")})

    # --- operator requests (the runbook API) ------------------------------------------------

    async def preview(self) -> tuple[Plan, KubeView, SlurmView] | None:
        """What the planner would do now, without writing or remembering anything."""
        k8s = self.kube.view()
        slurm = await self.read_slurm()
        if not slurm.ok:
            return None
        return plan(k8s, slurm, self.policy, self.memory, self.clock()), k8s, slurm

    async def operator(self, kind: ActionKind, node: str, *, reason: str = "",
                       force: bool = False) -> manual.Decision:
        async with self.lock:
            slurm = await self.read_slurm()
            if not slurm.ok:
                return manual.Decision(None, self.memory,
                                       refused=f"Slurm unreachable: {self.status.slurm_error}")
            if kind is ActionKind.DRAIN:
                d = manual.drain(self.policy, slurm, self.memory, node, reason)
            else:
                d = manual.resume(self.policy, slurm, self.memory, node, force=force)
            if d.change is None:
                return d
            if not self.is_leader():
                return replace(d, change=None, refused="this replica is a standby; run the "
                               "command against the leader")
            from syncd.core.batching import batch

            events = await self._execute([d.change], list(batch([d.change], 1)),
                                         self.kube.view(), slurm, "operator")
            if any(e.type is EventType.ACTION_FAILED for e in events):
                self._publish(events)
                return replace(d, change=None, refused=str(events[0].data.get("error")))
            self.memory = d.memory
            self._publish(events)
            await self.state.save(self.memory)
            return d

    async def reset_breaker(self) -> None:
        async with self.lock:
            was = self.memory.breaker
            self.memory = reset_breaker(self.memory)
            self._publish([DriftEvent(EventType.BREAKER, "", {
                "state": "reset", "why": f"reset by an operator (was: {was.why or 'closed'})",
                "withheld": []})])
            self.metrics.breaker_open.set(0)
            await self.state.save(self.memory)
        self._wake.set()

    async def close(self) -> None:
        """Wait for the in-flight reconcile, then save the memory one last time."""
        async with self.lock:
            self.state.save_now(self.memory)


def _summary(e: DriftEvent) -> str:
    d = e.data
    if e.type is EventType.DRIFT:
        kinds = [x.get("kind") for x in d.get("drift", []) if isinstance(x, dict)]  # type: ignore[attr-defined]
        return "drift: " + (", ".join(str(k) for k in kinds) or "resolved")
    if e.type in (EventType.ACTION, EventType.ACTION_FAILED):
        text = f"{d.get('action')} ({d.get('outcome')}) {d.get('why', '')}".strip()
        return text + (f": {d.get('error')}" if d.get("error") else "")
    return f"{e.type.value}: {d.get('why', '')}"
