"""One reconcile pass: read Slurm (as little as the pass needs), plan, write when leader and
not dry-run, publish, remember.

All decisions are the pure core's (``plan``, ``may_plan``, ``read_scope``); this module only
sequences the I/O around them. Passes and operator requests are serialised by one lock, so an
in-flight batch always finishes before a shutdown or a manual drain touches the same state.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from dataclasses import replace

from syncd.core.model import EventType, KubeView, SlurmView, stamped
from syncd.core.passes import (
    CACHED_TRIGGERS,
    CONFIRM_MAX,
    ReadScope,
    disagreeing,
    may_plan,
    read_scope,
    to_confirm,
    to_verify,
    vanished,
)
from syncd.core.planner import Plan, plan
from syncd.core.policy import Policy
from syncd.core.ports import KubeSource, SpoolUnavailable
from syncd.core.recovery import resolve
from syncd.core.reporting import skip_events
from syncd.core.timers import record_writes
from syncd.engine.clock import LoopClock
from syncd.engine.debounce import STORM_MIN
from syncd.engine.executor import Executor
from syncd.engine.metrics import Metrics
from syncd.engine.mirroring import Mirroring
from syncd.engine.publishing import Publisher
from syncd.engine.shared import Shared
from syncd.engine.slurm_reader import NO_VIEW, Fresh, SlurmReader
from syncd.engine.state import StateSaver
from syncd.engine.triggers import VERIFY_AFTER, Triggers

log = logging.getLogger(__name__)
#: How often the vanished-node check runs when no count changed (a rename keeps both counts).
VANISHED_RECHECK = 60.0


class Reconciler:
    def __init__(self, *, kube: KubeSource, reader: SlurmReader, executor: Executor,
                 publisher: Publisher, policy: Policy, shared: Shared, saver: StateSaver,
                 triggers: Triggers, metrics: Metrics, clock: LoopClock,
                 is_leader: Callable[[], bool], mirroring: Mirroring | None = None) -> None:
        self.kube = kube
        self.reader = reader
        self.executor = executor
        self.publisher = publisher
        self.policy = policy
        self.shared = shared
        self.saver = saver
        self.triggers = triggers
        self.metrics = metrics
        self.clock = clock
        self.is_leader = is_leader
        self.mirroring = mirroring
        self._problems: frozenset[str] = frozenset()
        self._known: frozenset[str] = frozenset()
        self._known_sizes = (-1, -1)
        self._known_at = float("-inf")
        self._frozen = False
        self._recovered = False

    def start_read(self, trigger: str) -> bool:
        """For the loop: begin the read a verify, probe or resync pass needs, in the
        background, so that changes are planned meanwhile; its pass runs when it is done
        (trigger ``read``). False when the trigger needs no read of its own."""
        written = self.triggers.take_written()
        scope = read_scope(trigger=trigger, written=written, last=self._last_good(),
                           watch=self.shared.memory.watch,
                           full_read_age=self.reader.full_read_age(), full_needed=False)
        if scope.nothing:
            return False
        self.reader.start(scope, self.triggers.read_done, trigger)
        return True

    def _last_good(self) -> SlurmView:
        return self.reader.last if self.reader.health.ok else NO_VIEW

    async def reconcile(self, trigger: str = "manual", *, fresh: Fresh | None = None
                        ) -> Plan | None:
        async with self.shared.lock:
            started = self.clock.monotonic()
            k8s = self.kube.view()
            if not may_plan(k8s, ever_synced=self.shared.ever_synced):
                if fresh is not None:
                    self.reader.merge(fresh)
                elif trigger in ("probe", "resync"):
                    await self.reader.read_full()  # /readyz stays honest about Slurm meanwhile
                return None
            self.shared.ever_synced = True
            touched, full_needed = self.triggers.take_touched(
                keep_written=fresh is None and trigger in CACHED_TRIGGERS)
            memory = self.shared.memory
            before = self.reader.last
            if fresh is not None:
                self.reader.merge(fresh)
            scope = read_scope(trigger="read" if fresh is not None else trigger,
                               written=touched, last=self._last_good(), watch=memory.watch,
                               full_read_age=self.reader.full_read_age(),
                               full_needed=full_needed)
            if fresh is not None and not full_needed and self.reader.last.ok:
                # what the background read brought is planned now; nothing more is read
                slurm = self.reader.last
                read = fresh.names
                full = fresh.view is not None
            else:
                slurm = await self.reader.read(scope)
                read = frozenset(slurm.nodes) if scope.full else frozenset(scope.names)
                full = scope.full
            if not slurm.ok:
                return None
            t_read = self.clock.monotonic()
            if trigger not in CACHED_TRIGGERS or fresh is not None:
                self.metrics.pass_stage.labels("read").observe(t_read - started)
            observed = self.clock.now()  # the time of what this pass's drift events report
            only = None if full else touched | read
            if full and fresh is not None and "resync" not in fresh.triggers:
                # A probe: the nodes whose snapshots the read replaced are all that can have
                # changed on the Slurm side (the port hands back the same object for an
                # unchanged node). The resync still plans every node, as a safety net.
                only = _replaced(before, slurm, touched)
            p = plan(k8s, slurm, self.policy, memory, self.clock.now(), only=only)
            t_plan = self.clock.monotonic()
            self.metrics.pass_stage.labels("plan").observe(t_plan - t_read)
            leader = self.is_leader()
            self.metrics.leader.set(1 if leader else 0)
            if leader and not self.executor.dry_run:
                confirmed = await self._confirm(p, k8s, slurm, read, only, trigger)
                if confirmed is None:
                    return None
                p, slurm = confirmed
            t_confirm = self.clock.monotonic()
            if t_confirm > t_plan:
                self.metrics.pass_stage.labels("confirm").observe(t_confirm - t_plan)
            # A standby plans too, so its timers continue where the leader was at a takeover,
            # but it writes and publishes nothing (the leader does).
            self.shared.memory = p.memory
            if leader:
                await self._act(p, k8s, slurm, observed)
                if p.actions:
                    self.metrics.pass_stage.labels("write").observe(
                        self.clock.monotonic() - t_confirm)
            self._record(p)
            for by in (fresh.triggers if fresh is not None and fresh.triggers else (trigger,)):
                self.metrics.reconciles.labels(by).inc()
            self.metrics.reconcile_seconds.observe(self.clock.monotonic() - started)
            if p.changes or p.events:
                self.saver.save(self.shared.memory)
            if not self._frozen:
                # After the first full picture the heap is mostly long-lived (records of every
                # node and pod): moving it out of the collector's generations keeps later
                # full collections (100+ ms pauses at 10,000 nodes) off the hot path.
                self._frozen = True
                gc.freeze()
            return p

    async def _confirm(self, p: Plan, k8s: KubeView, slurm: SlurmView, read: frozenset[str],
                       only: frozenset[str] | None,
                       trigger: str) -> tuple[Plan, SlurmView] | None:
        """The plan with its state writes confirmed against slurmctld (those planned on the
        last view); re-planned on a fresh read of any node that changed behind syncd's back.
        None when the pass is given up: Slurm could not be read, or a storm began while it
        confirmed (its changes go to the next pass, which waits for the storm to end)."""
        names = to_confirm(p.actions, read)
        if not names:
            return p, slurm
        marks = await self.reader.read_marks(names) if len(names) <= CONFIRM_MAX else None
        bad = names if marks is None else disagreeing(names, marks, slurm)
        if (trigger == "change" and self.triggers.first_look_only
                and len(self.triggers.pending) >= STORM_MIN):
            # More nodes changed during the confirming read than ordinary churn brings: the
            # start of a mass event, whose drains are batched best in one pass.
            self.triggers.storm_suspected()
            self.triggers.notify(self.triggers.taken)
            self.metrics.storm_deferrals.inc()
            return None
        self.metrics.confirms.labels("agreed").inc(len(names) - len(bad))
        if not bad:
            return p, slurm
        self.metrics.confirms.labels("disagreed").inc(len(bad))
        slurm = await self.reader.read(ReadScope(full=False, names=bad))
        if not slurm.ok:
            return None
        again = None if only is None else only | set(bad)
        return plan(k8s, slurm, self.policy, self.shared.memory, self.clock.now(),
                    only=again), slurm

    async def _act(self, p: Plan, k8s: KubeView, slurm: SlurmView, observed: float) -> None:
        await self._recover(slurm)
        problems = frozenset(k8s.problems)
        # What the pass saw goes out before what it did: a node's drift event precedes its
        # action event in the stream (the action's events are spooled with its intent).
        self.publisher.publish(stamped([*p.events, *skip_events(
            self.kube.take_skips(), problems, self._problems)], observed))
        self._problems = problems
        # A write refused again while its node backs off (e.g. a RESUME slurmctld calls an
        # invalid transition) was reported when it first failed: one event, not one per retry.
        again = frozenset(n for a in p.actions for n in a.nodes
                          if self.shared.memory.node(n).write_failures)
        out = await self.executor.execute(p.changes, p.actions, k8s=k8s, slurm=slurm,
                                          actor="planner", quiet_failures=again)
        self.publisher.spooled(out.spooled)
        events = list(out.events)
        if out.written and not self.executor.dry_run:
            self.shared.memory = record_writes(self.shared.memory, self.policy,
                                               failed=out.failed_nodes,
                                               succeeded=out.written - out.failed_nodes,
                                               now=self.clock.now())
        if out.written and not self.executor.dry_run:
            self.reader.assume(p.actions, failed=_not_written(p, out.written, out.failed_nodes))
            self.triggers.written(to_verify(p.actions, out.written, out.failed_nodes),
                                  verify_after=VERIFY_AFTER)
        if self.mirroring is not None:  # Slurm -> Kubernetes, after this pass's Slurm writes
            events.extend(await self.mirroring.apply(
                k8s, slurm, self.shared.memory,
                skip=() if self.executor.dry_run else out.written))
        self.publisher.publish(events)
        self._forget_vanished(k8s, slurm)

    async def _recover(self, slurm: SlurmView) -> None:
        """Writes a crash left between intent and outcome: their events, with the outcome
        Slurm shows now (once, when this replica first leads with a full view)."""
        wal = self.executor.wal
        if self._recovered or wal is None or not slurm.ok:
            return
        for intent in wal.open_intents():
            # A write found made happened after its intent was stored (its best-known time);
            # one found not made is an observation of now.
            now = self.clock.now()
            events = [replace(e, occurred_at=intent.created if e.data.get("outcome") == "recovered"
                              else now) for e in resolve(intent.record, slurm)]
            try:
                await wal.settle(intent.key, events)
            except SpoolUnavailable:
                return  # tried again at the next pass
            self.publisher.spooled(events)
            log.warning("a Slurm write left open by a crash was resolved", extra={
                "intent": intent.key, "action": intent.record.get("action"),
                "outcomes": sorted({str(e.data["outcome"]) for e in events})})
        self._recovered = True

    def _forget_vanished(self, k8s: KubeView, slurm: SlurmView) -> None:
        """A node gone from both worlds: subscribers clear their retained state for it."""
        # A node leaving both worlds changes a count; a rename that keeps both counts is caught
        # by the periodic recheck. This keeps two 10k-name sets off every pass.
        sizes = (len(k8s.nodes), len(slurm.nodes))
        now = self.clock.monotonic()
        if sizes == self._known_sizes and now - self._known_at < VANISHED_RECHECK:
            return
        self._known_sizes, self._known_at = sizes, now
        self._known, gone = vanished(self._known, k8s, slurm)
        for name in sorted(gone):
            self.publisher.remove_node(name, "node is in neither Kubernetes nor Slurm any more")

    def _record(self, p: Plan) -> None:
        memory = self.shared.memory
        self.metrics.drifted.set(memory.drifted)
        self.metrics.withheld.set(len(p.withheld))
        self.metrics.breaker_open.set(1 if memory.breaker.open else 0)
        for e in p.events:
            if e.type is EventType.BREAKER:
                log.warning("breaker: " + str(e.data.get("why", "")),
                            extra={"state": e.data.get("state")})


def _not_written(p: Plan, written: set[str], failed: set[str]) -> set[str]:
    return {n for a in p.actions for n in a.nodes if n not in written} | failed


def _replaced(before: SlurmView, after: SlurmView, touched: frozenset[str]
              ) -> frozenset[str] | None:
    """Nodes whose Slurm snapshot is not the very object it was, with ``touched``; None
    (plan every node) when the node set itself changed."""
    if not before.ok or len(before.nodes) != len(after.nodes):
        return None
    old = before.nodes
    changed = {n for n, s in after.nodes.items() if old.get(n) is not s}
    if any(n not in old for n in changed):
        return None
    return touched | changed
