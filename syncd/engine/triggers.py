"""What wakes the reconcile loop: a Kubernetes change (debounced), a write to read back, a
timer coming due, the Slurm probe, the periodic resync, or a request for a full read.

Slurm is not watched, so the probe (every ``daemon.slurm_probe_every``) is a pass with a full
read: a slurmctld restart (which resets features to slurm.conf), an outage, and any change made
in Slurm behind syncd's back (a feature removed, a reason edited) are seen and repaired within
that interval. With the settled-node cache such a pass costs one read and almost no planning.

The loop asks :meth:`Triggers.next` for the next reason to run a pass; the watcher, the probe
and the reconciler tell it what happened. It also collects the node names touched since the
last pass, which decide what that pass reads from Slurm.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from syncd.engine.clock import LoopClock
from syncd.engine.debounce import FIRST_LOOK, settle

#: Slurm is not watched: nodes just written are read back this long after the first write.
VERIFY_AFTER = 1.0
#: How far back arrivals are kept for the storm test (at least its window).
ARRIVALS_KEPT = 0.5


class Triggers:
    def __init__(self, clock: LoopClock, *, debounce: float, debounce_max: float,
                 resync_every: float, probe_every: float = float("inf")) -> None:
        self.clock = clock
        self.debounce = debounce
        self.debounce_max = debounce_max
        self.resync_every = resync_every
        self.probe_every = probe_every
        self._next_probe: float | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._changed: set[str] = set()
        self._written: set[str] = set()
        self._full_needed = False
        self._verify_at: float | None = None
        self._next_resync: float | None = None
        self._read_ready = False
        self._arrived = 0
        self._arrivals: deque[tuple[float, int]] = deque()
        #: The last settle returned after its short first look (a storm may have begun since).
        self.first_look_only = False
        self._suspect = False
        #: The changed nodes the last pass took (without the written ones).
        self.taken: frozenset[str] = frozenset()

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def pending(self) -> frozenset[str]:
        """Nodes changed since the last pass took them."""
        return frozenset(self._changed)

    def notify(self, changed: Iterable[str] = ()) -> None:
        """Kubernetes changed these Slurm nodes (or something else worth a pass happened)."""
        before = len(self._changed)
        self._changed.update(changed)
        if len(self._changed) > before:
            # arrivals, for the storm test: a backlog that built up while a pass ran is a
            # storm's evidence too, not only what arrives during the next look
            self._arrived += len(self._changed) - before
            now = self.clock.monotonic()
            self._arrivals.append((now, self._arrived))
            while self._arrivals and now - self._arrivals[0][0] > ARRIVALS_KEPT:
                self._arrivals.popleft()
        self._wake.set()

    def request_full(self) -> None:
        """The next pass reads every node (slurmctld restarted or came back)."""
        self._full_needed = True
        self._wake.set()

    def written(self, nodes: Iterable[str], *, verify_after: float) -> None:
        """These nodes were written: read them back ``verify_after`` seconds from now, since
        Slurm is not watched."""
        self._written.update(nodes)
        if self._verify_at is None:  # the earliest unverified write sets the time
            self._verify_at = self.clock.monotonic() + verify_after

    def storm_suspected(self) -> None:
        """A pass saw a storm begin: the next settle looks with full steps."""
        self._suspect = True

    def read_done(self) -> None:
        """A background Slurm read can be merged: wake for its pass (trigger ``read``)."""
        self._read_ready = True
        self._wake.set()

    def take_written(self) -> frozenset[str]:
        """Nodes written since they were last taken, for the read that verifies them."""
        written, self._written = frozenset(self._written), set()
        return written

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def take_touched(self, *, keep_written: bool = False) -> tuple[frozenset[str], bool]:
        """(nodes changed or written since the last pass, whether a full read is needed).

        A pass that plans on the last view keeps the written nodes for the verify read."""
        touched = frozenset(self._changed | self._written)
        full, self._full_needed = self._full_needed, False
        self.taken = frozenset(self._changed)
        self._changed = set()
        if not keep_written:
            self._written = set()
        return touched, full

    async def next(self, timer_due_in: float | None) -> str | None:
        """Wait for the next reason to run a pass; None once stopping.

        ``timer_due_in`` is how long until the planner's next timer (seconds, from
        :func:`syncd.core.timers.next_deadline`), or None.
        """
        now = self.clock.monotonic()
        if self._next_resync is None:
            self._next_resync = now
            self._next_probe = now + self.probe_every
        assert self._next_probe is not None
        timeout = min(self._next_resync, self._next_probe) - now
        if timer_due_in is not None:
            timeout = min(timeout, timer_due_in + 0.01)
        if self._verify_at is not None:
            timeout = min(timeout, self._verify_at - now)
        try:
            await asyncio.wait_for(self._wake.wait(), max(0.0, timeout))
            trigger = "read" if self._read_ready else "change"
        except TimeoutError:
            now = self.clock.monotonic()
            if now >= self._next_resync:
                trigger = "resync"
            elif now >= self._next_probe:
                trigger = "probe"
            elif self._verify_at is not None and now >= self._verify_at:
                trigger = "verify"
            else:
                trigger = "timer"
        if trigger == "verify":
            self._verify_at = None
        if self._stopping:
            return None
        self.first_look_only = False
        if trigger == "change" and self.debounce > 0:
            # After a pass gave its nodes up to a storm, the first look is a full step: the
            # storm's rate is what a few milliseconds could not tell.
            first = self.debounce if self._suspect else FIRST_LOOK
            self._suspect = False
            waits = await settle(lambda: self._arrived, self.debounce, self.debounce_max,
                                 clock=self.clock.monotonic, first=first,
                                 history=tuple(self._arrivals))
            self.first_look_only = waits <= 1 and first < self.debounce
        if trigger == "read":
            self._read_ready = False
            if not self._changed and not self._stopping:
                self._wake.clear()
        else:
            self._wake.clear()
            if self._read_ready:
                self._wake.set()
        now = self.clock.monotonic()
        if trigger == "resync":
            self._next_resync = now + self.resync_every
        if trigger in ("resync", "probe"):
            self._next_probe = now + self.probe_every
        return trigger
