"""Decisions about one reconcile pass, as opposed to one node: whether to plan at all, which
Slurm nodes to read for it, and which nodes have left both worlds.

The reconcile loop asks these and does the I/O; keeping them here means the rules are stated
once and are tested without a loop, a clock or a Slurm.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from syncd.core.model import (
    Action,
    ActionKind,
    BaseState,
    KubeView,
    NodeMark,
    SlurmNode,
    SlurmView,
)

#: An incremental read is used while the last full read is this young (seconds)...
FULL_READ_MAX_AGE = 60.0
#: ...and names at most this many nodes; beyond that, one full read is cheaper.
PARTIAL_READ_MAX = 500
#: Triggers whose pass may read only the nodes it can decide anything about.
INCREMENTAL_TRIGGERS = frozenset({"change", "verify", "timer"})
#: Triggers whose pass plans on the last view without reading Slurm first.
CACHED_TRIGGERS = frozenset({"change", "timer"})
#: Writes confirmed by a cheap read of the node's state and reason just before they are
#: made, when planned on the last view: each could overwrite or lift a drain an operator made
#: since that view was read. Feature and hold writes are not (see docs/hot-path.md).
CONFIRMED = frozenset({ActionKind.DRAIN, ActionKind.DOWN, ActionKind.RESUME})
#: A pass confirms at most this many nodes one by one; beyond that it reads them in one call.
CONFIRM_MAX = 16


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
    written: Collection[str],
    last: SlurmView,
    watch: Collection[str] | None,
    full_read_age: float,
    full_needed: bool,
) -> ReadScope:
    """A full read, only the nodes this pass can decide anything about, or nothing.

    A change or timer pass reads nothing: it plans on the last view, into which the reader
    has put syncd's own writes (:func:`assumed`); a read of 10,000 nodes before a 5 ms write
    would cost ~85 ms, and its state writes are confirmed node by node instead
    (:func:`to_confirm`). A verify pass reads the nodes just written. Nodes with a timer
    running are not read with them: a state write is confirmed before it is made, and the
    probe reads them; reading them too made every verify read at 10,000 nodes under churn a
    read of the whole node table (docs/hot-path.md). Resyncs, probes and restarts read
    everything, as does any pass whose last full read is older than ``FULL_READ_MAX_AGE``
    or that has no plan to build on (``watch`` None).
    """
    if (trigger not in INCREMENTAL_TRIGGERS or full_needed or not last.ok or watch is None
            or full_read_age >= FULL_READ_MAX_AGE):
        return FULL
    if trigger in CACHED_TRIGGERS:
        return ReadScope(full=False)
    wanted = {n for n in written if n in last.nodes}
    if len(wanted) > PARTIAL_READ_MAX:
        return FULL
    return ReadScope(full=False, names=tuple(sorted(wanted)))


def to_confirm(actions: Iterable[Action], fresh: Collection[str]) -> tuple[str, ...]:
    """Nodes of ``actions`` whose state write must be confirmed first: those not read in this
    very pass (``fresh``)."""
    return tuple(sorted({n for a in actions if a.kind in CONFIRMED for n in a.nodes
                         if n not in fresh}))


def to_verify(actions: Iterable[Action], written: Collection[str],
              failed: Collection[str]) -> set[str]:
    """Nodes to read back after this pass's writes: those of state writes and holds, and
    any whose write failed. A feature write that succeeded is not read back: slurmctld sets
    exactly the features written (the assumed view has them), and on 10,000 nodes under
    churn those reads were most of slurmctld's RPCs and a core's worth of sinfo processes
    beside the next change's write; the probe reads them within ``slurm_probe_every``."""
    out = {n for a in actions if a.kind is not ActionKind.SET_FEATURES for n in a.nodes
           if n in written}
    out.update(n for n in failed if n in written)
    return out


def disagreeing(names: Iterable[str], marks: Mapping[str, NodeMark],
                view: SlurmView) -> tuple[str, ...]:
    """Nodes whose confirming read differs from ``view`` (or found no node)."""
    out = []
    for n in names:
        mark, s = marks.get(n), view.nodes.get(n)
        if mark is None or s is None or not mark.agrees(s):
            out.append(n)
    return tuple(out)


def assumed(view: SlurmView, actions: Iterable[Action], failed: Collection[str]) -> SlurmView:
    """``view`` as slurmctld shows it after ``actions`` succeeded (except on ``failed``
    nodes), so that the next pass planned on it does not make the same write again before
    the verify read has confirmed it."""
    nodes = dict(view.nodes)
    for a in actions:
        for name in a.nodes:
            s = nodes.get(name)
            if s is not None and name not in failed:
                nodes[name] = _after(s, a)
    return SlurmView(nodes=nodes, ok=view.ok, boot_time=view.boot_time)


def _after(s: SlurmNode, a: Action) -> SlurmNode:
    if a.kind is ActionKind.SET_FEATURES:  # written as both (syncd.core.model.Action)
        return replace(s, available_features=a.features, active_features=a.features)
    if a.kind is ActionKind.DRAIN:
        return replace(s, flags=s.flags | {"DRAIN"}, reason=a.reason)
    if a.kind is ActionKind.DOWN:
        return replace(s, state=BaseState.DOWN, reason=a.reason)
    if a.kind is ActionKind.RESUME:
        state = BaseState.IDLE if s.state is BaseState.DOWN else s.state
        return replace(s, state=state, flags=s.flags - {"DRAIN"}, reason="", reason_user="")
    return replace(s, hold_gpus=a.hold_gpus)


def vanished(known: frozenset[str], k8s: KubeView, slurm: SlurmView) -> tuple[frozenset[str],
                                                                            frozenset[str]]:
    """(names known now, names that were known and are in neither world any more)."""
    now = frozenset(k8s.nodes) | frozenset(slurm.nodes)
    return now, known - now
