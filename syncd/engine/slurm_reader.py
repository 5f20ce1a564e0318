"""Reads Slurm for the engine and keeps what the last read said.

It owns the "is Slurm reachable" state that ``/readyz``, ``syncd status`` and the metrics
report, logs an outage once when it starts and once when it ends, and merges an incremental
read into the last full view. Which nodes to read is decided by
:func:`syncd.core.passes.read_scope`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from syncd.core.errors import SlurmError
from syncd.core.model import Action, NodeMark, SlurmNode, SlurmView
from syncd.core.passes import FULL, ReadScope, assumed
from syncd.core.ports import SlurmPort
from syncd.engine.clock import LoopClock
from syncd.engine.metrics import Metrics

log = logging.getLogger(__name__)
#: What a pass plans on when Slurm could not be read.
NO_VIEW = SlurmView({}, ok=False)


def _combine(old: Fresh | None, new: Fresh) -> Fresh:
    """Two background reads not merged yet: a full one wins; two partial ones add up."""
    if old is None:
        return new
    by = (*old.triggers, *new.triggers)
    if new.view is not None:
        return Fresh(new.seq, view=new.view, triggers=by)
    if old.view is not None:
        view = SlurmView({**old.view.nodes, **(new.part or {})}, ok=True,
                         boot_time=old.view.boot_time)
        return Fresh(old.seq, view=view, triggers=by)
    return Fresh(old.seq, part={**(old.part or {}), **(new.part or {})},
                 triggers=by)


@dataclass(frozen=True, slots=True)
class SlurmHealth:
    ok: bool = False
    error: str = ""


@dataclass(frozen=True, slots=True)
class Fresh:
    """A read made in the background, to be merged by the next pass (:meth:`SlurmReader.merge`).

    ``seq`` is the reader's write count when the read began: a node written after that shows
    its state from before the write in this read, so the merge keeps the assumed one."""

    seq: int
    view: SlurmView | None = None
    part: Mapping[str, SlurmNode] | None = None
    #: the triggers whose reads this holds (verify, probe, resync), counted by the pass
    triggers: tuple[str, ...] = ()

    @property
    def names(self) -> frozenset[str]:
        if self.view is not None:
            return frozenset(self.view.nodes)
        return frozenset(self.part or ())


class SlurmReader:
    def __init__(self, port: SlurmPort, metrics: Metrics, clock: LoopClock) -> None:
        self.port = port
        self.metrics = metrics
        self.clock = clock
        self.health = SlurmHealth()
        self.last: SlurmView = NO_VIEW
        self._full_at: float | None = None
        self._seq = 0
        self._written_at: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._wanted: ReadScope | None = None
        self._wanted_by: tuple[str, ...] = ()
        self._fresh: Fresh | None = None

    @property
    def reading(self) -> bool:
        """A background read is under way."""
        return self._task is not None and not self._task.done()

    def assume(self, actions: Iterable[Action], failed: Collection[str] = ()) -> None:
        """These writes were made: the last view shows them until a read says otherwise, and
        a background read begun before them does not undo them in the view."""
        actions = list(actions)
        if not actions or not self.last.ok:
            return
        self._seq += 1
        for a in actions:
            for n in a.nodes:
                if n not in failed:
                    self._written_at[n] = self._seq
        self.last = assumed(self.last, actions, failed)

    def start(self, scope: ReadScope, done: Callable[[], None], trigger: str = "") -> None:
        """Read ``scope`` in the background and call ``done`` when the result can be merged;
        while one read runs, a further request waits for it (a full one absorbs a partial)."""
        if self.reading:
            self._wanted_by = (*self._wanted_by, trigger)
            w = self._wanted
            if w is None or scope.full or w.full:
                self._wanted = scope if w is None or scope.full else w
            else:
                self._wanted = ReadScope(full=False,
                                         names=tuple(sorted({*w.names, *scope.names})))
            return
        self._task = asyncio.create_task(self._background(scope, done, (trigger,)),
                                         name="syncd-slurm-read")

    async def _background(self, scope: ReadScope, done: Callable[[], None],
                          by: tuple[str, ...]) -> None:
        while True:
            seq = self._seq
            fresh: Fresh | None = None
            if scope.full:
                view = await self._read_full_raw()
                fresh = Fresh(seq, view=view, triggers=by) if view is not None else None
            else:
                part = await self._read_part(scope.names)
                fresh = Fresh(seq, part=part, triggers=by) if part is not None else None
                if part is None:  # fall back, as an inline read does
                    view = await self._read_full_raw()
                    fresh = Fresh(seq, view=view, triggers=by) if view is not None else None
            if fresh is not None:
                self._fresh = _combine(self._fresh, fresh)
            done()
            nxt, self._wanted = self._wanted, None
            by, self._wanted_by = self._wanted_by, ()
            if nxt is None:
                return
            scope = nxt

    async def stop(self) -> None:
        """Cancel a background read still under way (at shutdown)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def take_fresh(self) -> Fresh | None:
        fresh, self._fresh = self._fresh, None
        return fresh

    def merge(self, fresh: Fresh) -> SlurmView:
        """The last view with ``fresh`` in it, except nodes written since ``fresh`` began."""
        later = {n for n, q in self._written_at.items() if q > fresh.seq}
        if fresh.view is not None:
            nodes = dict(fresh.view.nodes)
            for n in later:
                if n in nodes and n in self.last.nodes:
                    nodes[n] = self.last.nodes[n]
            self.last = SlurmView(nodes=nodes, ok=True, boot_time=fresh.view.boot_time)
            self._full_at = self.clock.monotonic()
        elif fresh.part is not None and self.last.ok:
            nodes = dict(self.last.nodes)
            nodes.update((n, s) for n, s in fresh.part.items() if n not in later)
            self.last = SlurmView(nodes=nodes, ok=True, boot_time=self.last.boot_time)
        self._written_at = {n: q for n, q in self._written_at.items() if q > fresh.seq}
        return self.last

    async def read_marks(self, names: Sequence[str]) -> Mapping[str, NodeMark] | None:
        """The confirming read of a few nodes; None when it failed."""
        try:
            marks = await self.port.read_marks(names)
        except SlurmError as exc:
            log.warning("confirming read failed", extra={"error": str(exc)})
            self.metrics.slurm_calls.labels("read_marks", "failed").inc()
            return None
        self.metrics.slurm_calls.labels("read_marks", "ok").inc()
        return marks

    def full_read_age(self) -> float:
        if self._full_at is None:
            return float("inf")
        return self.clock.monotonic() - self._full_at

    def failed(self, exc: SlurmError, op: str) -> None:
        """Record a failed call (a read here, or the probe's)."""
        self.metrics.slurm_calls.labels(op, "failed").inc()
        self.metrics.slurm_up.set(0)
        if self.health.ok or not self.health.error:
            log.error("Slurm unreachable", extra={"error": str(exc), "op": op})
        self.health = SlurmHealth(ok=False, error=str(exc))
        # Whatever changed while Slurm was away is unknown: the next read reads everything.
        self._full_at = None

    def succeeded(self, op: str) -> None:
        self.metrics.slurm_calls.labels(op, "ok").inc()
        self.metrics.slurm_up.set(1)
        if not self.health.ok and self.health.error:
            log.info("Slurm reachable again")
        self.health = SlurmHealth(ok=True)

    async def read(self, scope: ReadScope) -> SlurmView:
        """The view a pass plans on, read now; ``ok=False`` when Slurm could not be read."""
        if scope.nothing and self.last.ok:
            return self.last
        seq = self._seq
        if not scope.full:
            part = await self._read_part(scope.names)
            if part is not None:
                return self.merge(Fresh(seq, part=part))
        view = await self._read_full_raw()
        if view is None:
            return NO_VIEW
        return self.merge(Fresh(seq, view=view))

    async def _read_part(self, names: Sequence[str]) -> Mapping[str, SlurmNode] | None:
        try:
            part = await self.port.read_nodes(names)
        except SlurmError as exc:
            log.warning("partial Slurm read failed; reading everything",
                        extra={"error": str(exc)})
            self.metrics.slurm_calls.labels("read_nodes", "failed").inc()
            return None
        self.metrics.slurm_calls.labels("read_nodes", "ok").inc()
        return part

    async def _read_full_raw(self) -> SlurmView | None:
        try:
            view = await self.port.read()
        except SlurmError as exc:
            self.failed(exc, "read")
            return None
        self.succeeded("read")
        return view

    async def read_full(self) -> SlurmView:
        return await self.read(FULL)

    async def boot_time(self) -> str | None:
        """slurmctld's boot time, or None when it does not answer (recorded as an outage)."""
        try:
            boot = await self.port.boot_time()
        except SlurmError as exc:
            self.failed(exc, "boot_time")
            return None
        return boot
