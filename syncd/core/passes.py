"""Decisions about one reconcile pass, as opposed to one node: whether to plan at all, which
Slurm nodes to read for it, and which nodes have left both worlds.

The reconcile loop asks these and does the I/O; keeping them here means the rules are stated
once and are tested without a loop, a clock or a Slurm.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from syncd.core.model import KubeView, SlurmView

#: An incremental read is used while the last full read is this young (seconds)...
FULL_READ_MAX_AGE = 60.0
#: ...and names at most this many nodes; beyond that, one full read is cheaper.
PARTIAL_READ_MAX = 500
#: Triggers whose pass may read only the nodes it can decide anything about.
INCREMENTAL_TRIGGERS = frozenset({"change", "verify"})


def may_plan(k8s: KubeView, *, ever_synced: bool) -> bool:
    """Nothing is planned until the watcher's first complete list: capacity from a partial pod
    list would advertise GPUs that pods use, and would be written twice. After that a stale
    view is planned (the breaker withholds its drains, capacity still follows)."""
    return k8s.synced or ever_synced


@dataclass(frozen=True, slots=True)
class ReadScope:
    """What to read from Slurm for a pass: everything, some nodes, or nothing new."""

    full: bool
    names: tuple[str, ...] = ()

    @property
    def nothing(self) -> bool:
        return not self.full and not self.names


FULL = ReadScope(full=True)


def read_scope(
    *,
    trigger: str,
    touched: Collection[str],
    last: SlurmView,
    settled: Mapping[str, object],
    full_read_age: float,
    full_needed: bool,
) -> ReadScope:
    """A full read, or only the nodes this pass can decide anything about.

    Nodes in the planner's settled cache keep their (equal) Slurm objects and are skipped by
    the planner, so their Slurm state is never used to decide; every node the planner does
    evaluate (``touched``: changed in Kubernetes or just written; or not settled: a timer is
    running) is read fresh. Resyncs, probes, timers and restarts read everything, as does a
    pass whose last full read is older than ``FULL_READ_MAX_AGE``.
    """
    if (trigger not in INCREMENTAL_TRIGGERS or full_needed or not last.ok
            or full_read_age >= FULL_READ_MAX_AGE):
        return FULL
    wanted = {n for n in touched if n in last.nodes}
    wanted.update(n for n in last.nodes if n not in settled)
    if len(wanted) > PARTIAL_READ_MAX:
        return FULL
    return ReadScope(full=False, names=tuple(sorted(wanted)))


def vanished(known: frozenset[str], k8s: KubeView, slurm: SlurmView) -> tuple[frozenset[str],
                                                                            frozenset[str]]:
    """(names known now, names that were known and are in neither world any more)."""
    now = frozenset(k8s.nodes) | frozenset(slurm.nodes)
    return now, known - now
