"""The pod name mapping (``kubernetes.name_mapping.mode: pod``): Slurm nodes named by slurmd pods.

Node records, GPU holds and tombstones are kept exactly as in node mappings
(:class:`ClusterState`); what differs is who names a Slurm node. Here it is a slurmd pod, and
the Slurm node follows the Kubernetes node the pod is bound to. The rules, written down in
docs/slinky.md and held by tests/kube/test_podmap.py:

- a pod that is Pending and not scheduled yet names nothing syncd can compare: the Slurm name
  has no KubeNode (so it is left as it is) and ``syncd why`` says the pod is unscheduled;
- a pod bound to a node (Pending there, Running, restarting, Failed, or terminating) follows
  that node until the pod object is gone: a pod stuck terminating on a NotReady node keeps its
  Slurm node drained, and a restarting container changes nothing here;
- a pod that moves (deleted, re-created, bound elsewhere) follows its new node: Slinky keeps
  the Slurm name, so the name's memory (timers, syncd's ledger) carries over;
- pods claiming one Slurm name on *different* nodes contest it (driven in neither direction,
  listed in problems); on the same node (a replacement created before the old pod is gone)
  they agree;
- several Slurm names on one Kubernetes node each follow that node's state, and carry
  ``shares_node_with``: the node's GPUs cannot be split between them, so no capacity is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType

from syncd.core.model import KubeNode
from syncd.core.naming import NameMapper
from syncd.kube.slurmd import SlurmdPod
from syncd.kube.state import ClusterState

log = logging.getLogger(__name__)


class PodClusterState(ClusterState):
    def __init__(self, mapper: NameMapper, *, tombstone_ttl: float,
                 clock: Callable[[], float], mapping: str) -> None:
        super().__init__(mapper, tombstone_ttl=tombstone_ttl, clock=clock)
        self.mapping = mapping
        self.claims: dict[str, SlurmdPod] = {}  # pod key -> claim
        self._keys_of: dict[str, set[str]] = {}  # slurm name -> pod keys naming it
        self._names_on: dict[str, dict[str, int]] = {}  # kube node -> slurm name -> pods
        self._refused: dict[str, str] = {}  # pod key -> problem
        self._touched: set[str] = set()  # slurm names to rebuild
        self._notes: dict[str, str] = {}

    # -- claims ----------------------------------------------------------------------------
    def put_claim(self, key: str, claim: SlurmdPod | None) -> None:
        old = self.claims.pop(key, None)
        if old == claim:
            if old is not None:
                self.claims[key] = old
            return
        if old is not None:
            self._index(old, -1)
        if claim is not None:
            self.claims[key] = claim
            self._index(claim, +1)

    def replace_claims(self, claims: Mapping[str, SlurmdPod]) -> None:
        """After a (re)list of pods: a claim not listed went away while we were not watching."""
        for key in [k for k in self.claims if k not in claims]:
            self.put_claim(key, None)
        for key, claim in claims.items():
            self.put_claim(key, claim)

    def _index(self, c: SlurmdPod, sign: int) -> None:
        if c.slurm_name is None:
            if sign > 0:
                if c.key not in self._refused:
                    self.misses_total += 1
                    log.warning("name mapping skipped a slurmd pod: %s", c.problem)
                self._refused[c.key] = c.problem
            else:
                self._refused.pop(c.key, None)
            self._snapshot = None
            return
        name = c.slurm_name
        keys = self._keys_of.setdefault(name, set())
        if sign > 0:
            keys.add(c.key)
        else:
            keys.discard(c.key)
            if not keys:
                del self._keys_of[name]
        self._touched.add(name)
        if c.node:
            counts = self._names_on.setdefault(c.node, {})
            counts[name] = counts.get(name, 0) + sign
            if counts[name] <= 0:
                del counts[name]
            # The other names on that node gain or lose a neighbour: shares_node_with changes.
            self._touched.update(counts)
            if not counts:
                del self._names_on[c.node]

    # -- the view --------------------------------------------------------------------------
    def flush(self) -> frozenset[str]:
        touched, self._touched = self._touched, set()
        for kube in self._dirty:
            touched.update(self._names_on.get(kube, ()))
        self._dirty.clear()
        changed: set[str] = set()
        for slurm in touched:
            node, contested, note = self._entry(slurm)
            if (slurm in self._contested) != contested:
                changed.add(slurm)
                self._contested.symmetric_difference_update({slurm})
                if contested:
                    self.collisions_total += 1
                    log.warning("%s", self._collision(slurm))
            if note:
                self._notes[slurm] = note
            else:
                self._notes.pop(slurm, None)
            old = self._view.get(slurm)
            if node is None:
                if old is not None:
                    del self._view[slurm]
                    changed.add(slurm)
            elif node != old:
                self._view[slurm] = node
                changed.add(slurm)
        if touched:
            self._snapshot = None
        return frozenset(changed)

    def _entry(self, slurm: str) -> tuple[KubeNode | None, bool, str]:
        """(KubeNode or None, contested, note) for one Slurm name."""
        pods = sorted((self.claims[k] for k in self._keys_of.get(slurm, ())),
                      key=lambda c: c.key)
        bound = sorted({c.node for c in pods if c.node})
        if len(bound) > 1:
            return None, True, self._collision(slurm)
        if not bound:
            if not pods:
                return None, False, ""
            return None, False, "; ".join(f"slurmd pod {c.key} is {c.state()}" for c in pods)
        kube = bound[0]
        shares = tuple(sorted(n for n in self._names_on.get(kube, {}) if n != slurm))
        node = self._build(kube, slurm, shares)
        words = [f"slurmd pod {c.key} on node {kube} is {c.state()}" for c in pods
                 if c.node and (c.terminating or c.phase != "Running")]
        if node is None:
            words.append(f"slurmd pod on node {kube}, which syncd does not watch "
                         "(kubernetes.node_selector) or which is gone")
        return node, False, "; ".join(words)

    def _collision(self, slurm: str) -> str:
        pods = sorted(f"{k} on {self.claims[k].node}" for k in self._keys_of.get(slurm, ())
                      if self.claims[k].node)
        return f"Slurm name {slurm} claimed by slurmd pods on several nodes: {', '.join(pods)}"

    def notes(self) -> Mapping[str, str]:
        return MappingProxyType(dict(self._notes))

    def problems(self) -> tuple[str, ...]:
        out = sorted(self._refused.values())
        out += sorted(self._collision(s) for s in self._contested)
        return tuple(out)
