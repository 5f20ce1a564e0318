"""The watcher's in-memory picture: slim node and pod records, GPU sums, and the view.

Everything is incremental: an event marks one Kubernetes node dirty, and the next flush rebuilds
only the :class:`KubeNode` objects of dirty nodes; an unchanged node keeps its object, so
``view()`` at 10,000 nodes costs a dict copy. Deleted nodes stay as ``gone=True`` tombstones
(so the planner can drain them with cause "deleted") until re-added, until a live node claims
their Slurm name (a node replaced under a new Kubernetes name), or until ``tombstone_ttl``
passes. A Slurm name claimed by two live nodes is left out of the view and listed in
``KubeView.contested`` (driven by neither); names that collide or do not map are reported in
``KubeView.problems``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from syncd.core.model import EMPTY, KubeNode, KubeView
from syncd.core.naming import NameMapper, collision_problem
from syncd.kube.podgpu import PodHold
from syncd.kube.records import NodeRec

log = logging.getLogger(__name__)


class ClusterState:
    def __init__(self, mapper: NameMapper, *, tombstone_ttl: float,
                 clock: Callable[[], float]) -> None:
        self.mapper = mapper
        self.tombstone_ttl = tombstone_ttl
        self.clock = clock
        self.nodes: dict[str, NodeRec] = {}
        self.tombstones: dict[str, tuple[NodeRec, float]] = {}
        self.pods: dict[str, PodHold] = {}
        self.held: dict[str, dict[str, int]] = {}
        self._slurm_of: dict[str, str] = {}  # kube name -> mapped slurm name
        self._claims: dict[str, set[str]] = {}  # slurm name -> kube names claiming it
        self._misses: dict[str, str] = {}  # kube name -> problem
        self._view: dict[str, KubeNode] = {}
        self._dirty: set[str] = set()  # kube names
        self._snapshot: KubeView | None = None
        self._contested: set[str] = set()
        self.misses_total = 0
        self.collisions_total = 0
        #: The mapping in words (KubeView.mapping).
        self.mapping = f"Kubernetes node name, mapping mode {mapper.mode}"

    # -- nodes -----------------------------------------------------------------------------
    def put_node(self, rec: NodeRec) -> None:
        if self.nodes.get(rec.name) == rec:
            return
        self.nodes[rec.name] = rec
        self.tombstones.pop(rec.name, None)
        self._dirty.add(rec.name)

    def delete_node(self, name: str) -> None:
        rec = self.nodes.pop(name, None)
        if rec is not None:
            self.tombstones[name] = (rec, self.clock())
            self._dirty.add(name)

    def replace_nodes(self, recs: Iterable[NodeRec]) -> None:
        """After a (re)list: anything not listed was deleted while we were not watching."""
        fresh = {r.name: r for r in recs}
        for name in [n for n in self.nodes if n not in fresh]:
            self.delete_node(name)
        for rec in fresh.values():
            self.put_node(rec)

    # -- pods ------------------------------------------------------------------------------
    def _add_held(self, hold: PodHold, sign: int) -> None:
        sums = self.held.setdefault(hold.node, {})
        for res, n in hold.held:
            left = sums.get(res, 0) + sign * n
            if left:
                sums[res] = left
            else:
                sums.pop(res, None)
        if not sums:
            del self.held[hold.node]
        self._dirty.add(hold.node)

    def put_pod(self, key: str, hold: PodHold | None) -> None:
        old = self.pods.get(key)
        if old is hold:
            return
        if old is not None:
            self._add_held(old, -1)
            del self.pods[key]
        if hold is not None:
            self.pods[key] = hold
            self._add_held(hold, +1)

    def replace_pods(self, holds: Mapping[str, PodHold]) -> None:
        for key in [k for k in self.pods if k not in holds]:
            self.put_pod(key, None)
        for key, hold in holds.items():
            self.put_pod(key, hold)

    # -- the view --------------------------------------------------------------------------
    def _remap(self, kube: str) -> set[str]:
        """Recompute one node's Slurm name; returns the Slurm names whose entry may change."""
        touched: set[str] = set()
        old = self._slurm_of.pop(kube, None)
        if old is not None:
            self._claims[old].discard(kube)
            if not self._claims[old]:
                del self._claims[old]
            touched.add(old)
        self._misses.pop(kube, None)
        rec = self.nodes.get(kube) or (self.tombstones.get(kube) or (None, 0.0))[0]
        if rec is None:
            return touched
        mapped = self.mapper.map(kube, rec.labels, rec.annotations)
        if mapped.slurm_name is None:
            if kube not in self._misses:
                self.misses_total += 1
                log.warning("name mapping skipped a node: %s", mapped.problem)
            self._misses[kube] = mapped.problem
            return touched
        self._slurm_of[kube] = mapped.slurm_name
        claim = self._claims.setdefault(mapped.slurm_name, set())
        claim.add(kube)
        live = {k for k in claim if k in self.nodes}
        if len(live) == 2 and kube in live:
            self.collisions_total += 1
            log.warning("%s", collision_problem(mapped.slurm_name, live))
        touched.add(mapped.slurm_name)
        return touched

    def _build(self, kube: str, slurm: str, shares: tuple[str, ...] = ()) -> KubeNode | None:
        live = self.nodes.get(kube)
        rec = live or (self.tombstones.get(kube) or (None, 0.0))[0]
        if rec is None:
            return None
        held = self.held.get(kube)
        return KubeNode(
            name=kube, slurm_name=slurm, ready=rec.ready and live is not None,
            cordoned=rec.cordoned, taints=rec.taints, gpu_capacity=rec.capacity,
            gpu_allocatable=rec.allocatable,
            gpu_held=MappingProxyType(dict(held)) if held else EMPTY, gone=live is None,
            conditions=rec.conditions, mirror=rec.mirror, mirror_taint=rec.mirror_taint,
            shares_node_with=shares,
        )

    def expire_tombstones(self) -> None:
        cutoff = self.clock() - self.tombstone_ttl
        for name in [n for n, (_, t) in self.tombstones.items() if t < cutoff]:
            del self.tombstones[name]
            self._dirty.add(name)

    def flush(self) -> frozenset[str]:
        """Apply dirty nodes to the view; returns the Slurm names whose KubeNode changed."""
        if not self._dirty:
            return frozenset()
        touched: set[str] = set()
        for kube in self._dirty:
            touched |= self._remap(kube)
        self._dirty.clear()
        changed: set[str] = set()
        for slurm in touched:
            claim = self._release_tombstones(slurm)
            node = None
            was_contested = slurm in self._contested
            self._contested.discard(slurm)
            if len(claim) == 1:
                node = self._build(next(iter(claim)), slurm)
            elif len(claim) > 1:
                self._contested.add(slurm)
            if was_contested != (slurm in self._contested):
                changed.add(slurm)
            old = self._view.get(slurm)
            if node is None:
                if old is not None:
                    del self._view[slurm]
                    changed.add(slurm)
            elif node != old:
                self._view[slurm] = node
                changed.add(slurm)
        if changed or touched:
            self._snapshot = None
        return frozenset(changed)

    def _release_tombstones(self, slurm: str) -> set[str]:
        """A live node claiming a Slurm name ends the claims of deleted ones: the name was
        handed on (a node replaced under a new Kubernetes name)."""
        claim = self._claims.get(slurm, set())
        live = {k for k in claim if k in self.nodes}
        if live and len(claim) > len(live):
            for kube in claim - live:
                del self.tombstones[kube]
                self._slurm_of.pop(kube, None)
            claim.intersection_update(live)
        return claim

    def notes(self) -> Mapping[str, str]:
        """Per Slurm name, what ``syncd why`` should say beyond the node (pod mapping only)."""
        return MappingProxyType({})

    def problems(self) -> tuple[str, ...]:
        out = sorted(self._misses.values())
        # After flush, the contested names are exactly those with several claims: looking
        # only at them keeps a view of 10,000 nodes from scanning every claim per change.
        out += sorted(collision_problem(s, self._claims[s]) for s in self._contested
                      if s in self._claims)
        return tuple(out)

    def view(self, synced: bool) -> KubeView:
        self.flush()
        snap = self._snapshot
        if snap is None or snap.synced != synced:
            snap = KubeView(nodes=MappingProxyType(dict(self._view)), synced=synced,
                            problems=self.problems(), contested=frozenset(self._contested),
                            notes=self.notes(), mapping=self.mapping)
            self._snapshot = snap
        return snap
