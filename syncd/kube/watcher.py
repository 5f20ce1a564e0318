"""The Kubernetes side of syncd: nodes and pods kept in step, exposed as a :class:`KubeView`.

Two reflectors (nodes, pods) feed one :class:`ClusterState`. ``synced`` is false until both have
completed a full list, and again while either watch has stayed broken for longer than
``settings.stale_after``: the planner treats such a view as stale and does not drain on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import client

from syncd.core.model import KubeView
from syncd.core.naming import NameMapper
from syncd.core.policy import Policy
from syncd.kube.decode import NODES, PODS
from syncd.kube.podgpu import PodHold, parse_label_selector
from syncd.kube.podmap import PodClusterState
from syncd.kube.records import parse_node, parse_pod, pod_key
from syncd.kube.slurmd import SlurmdPod, slurmd_pod
from syncd.kube.state import ClusterState
from syncd.kube.watching import Reflector, WatchStats
from syncd.settings.kube import KubeSettings

log = logging.getLogger(__name__)


class Watcher:
    """Implements :class:`syncd.core.ports.KubeSource`."""

    def __init__(
        self,
        api: client.ApiClient,
        settings: KubeSettings,
        policy: Policy,
        on_change: Callable[[frozenset[str]], None] | None = None,
        *,
        tombstone_ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.on_change = on_change
        self.clock = clock
        self.stats = WatchStats()
        # Skipped values, kept until the reconciler publishes them as events; bounded so a
        # flood of bad manifests cannot grow memory (the counter still counts every one).
        self._skips: deque[str] = deque(maxlen=1000)
        self.resources = tuple(dict.fromkeys(r.name for r in policy.gpu_resources))
        self._conditions = frozenset(c.type for c in policy.conditions)
        m = policy.mirror
        self._mirror = (m.condition, m.taint_key) if m.enabled else ("", "")
        self.slurm_pods = parse_label_selector(settings.slurm_pod_selector)
        rule = settings.name_mapping
        self._keep_label = rule.key if rule.mode == "label" else ""
        self._keep_annotation = rule.key if rule.mode == "annotation" else ""
        self.state: ClusterState
        self._pod_sources = rule.pod_sources if rule.mode == "pod" else ()
        if self._pod_sources:
            self.state = PodClusterState(
                NameMapper(rule), tombstone_ttl=tombstone_ttl, clock=clock,
                mapping=f"slurmd pods ({settings.slurm_pod_selector}), Slurm name from "
                        f"{', '.join(rule.pod_sources)}, node from spec.nodeName")
        else:
            self.state = ClusterState(NameMapper(rule), tombstone_ttl=tombstone_ttl,
                                      clock=clock)
        self._listing_claims: dict[str, SlurmdPod] = {}
        core = client.CoreV1Api(api)
        common: dict[str, Any] = {
            "stats": self.stats, "page_size": settings.list_page_size,
            "watch_timeout": float(settings.watch_timeout),
            "backoff_initial": settings.reconnect_initial,
            "backoff_max": settings.reconnect_max, "clock": clock, "on_recover": self._wake,
        }
        self._listing_nodes: list[Any] = []
        self._listing_pods: dict[str, PodHold] = {}
        self.nodes = Reflector(
            kind="nodes", list_fn=core.list_node, selector=settings.node_selector,
            begin_list=self._listing_nodes.clear, list_item=self._list_node,
            end_list=self._end_nodes, apply=self._node_event, decoding=NODES, **common)
        self.pods = Reflector(
            kind="pods", list_fn=core.list_pod_for_all_namespaces,
            begin_list=self._begin_pods, list_item=self._list_pod,
            end_list=self._end_pods, apply=self._pod_event, decoding=PODS, **common)

    # -- parsing ---------------------------------------------------------------------------
    def _warn(self, warnings: list[str]) -> None:
        for w in warnings:
            self.stats.skipped += 1
            self._skips.append(w)
            log.warning("skipped a bogus value: %s", w)

    def _malformed(self, what: str, obj: Any, exc: Exception) -> None:
        # A dict, or a slim struct of syncd.kube.decode: both answer get().
        meta: Any = obj.get("metadata") if hasattr(obj, "get") else None
        name = meta.get("name") if hasattr(meta, "get") else None
        self._warn([f"{what} {str(name)[:100]!r}: malformed object skipped "
                    f"({type(exc).__name__}: {str(exc)[:200]})"])

    def _parse_node(self, obj: dict[str, Any]) -> Any:
        rec, warnings = parse_node(obj, self.resources, self._keep_label, self._keep_annotation,
                                   self._conditions, self._mirror)
        self._warn(warnings)
        return rec

    def _parse_pod(self, obj: dict[str, Any]) -> PodHold | None:
        hold, warnings = parse_pod(obj, self.resources, self.slurm_pods)
        self._warn(warnings)
        return hold

    def _claim(self, obj: dict[str, Any], key: str) -> SlurmdPod | None:
        """Pod mapping: the Slurm node a slurmd pod names (None for every other pod)."""
        if not self._pod_sources:
            return None
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if not self.slurm_pods.matches(labels):
            return None
        return slurmd_pod(obj, key, self._pod_sources)

    def _begin_pods(self) -> None:
        self._listing_pods.clear()
        self._listing_claims.clear()

    # One object the parsers cannot read is skipped and counted, never allowed to stop the
    # list or the watch: the stream would otherwise break on it again at every retry.
    def _list_node(self, obj: dict[str, Any]) -> None:
        try:
            self._listing_nodes.append(self._parse_node(obj))
        except Exception as exc:
            self._malformed("node", obj, exc)

    def _list_pod(self, obj: dict[str, Any]) -> None:
        try:
            hold = self._parse_pod(obj)
            key = pod_key(obj)
            claim = self._claim(obj, key)
        except Exception as exc:
            self._malformed("pod", obj, exc)
            return
        if hold is not None:
            self._listing_pods[key] = hold
        if claim is not None:
            self._listing_claims[key] = claim

    def _end_nodes(self) -> None:
        self.state.replace_nodes(self._listing_nodes)
        self._listing_nodes.clear()
        self._changed()

    def _end_pods(self) -> None:
        self.state.replace_pods(self._listing_pods)
        self._listing_pods.clear()
        if isinstance(self.state, PodClusterState):
            self.state.replace_claims(self._listing_claims)
            self._listing_claims.clear()
        self._changed()

    def _node_event(self, kind: str, obj: dict[str, Any]) -> None:
        try:
            if kind == "DELETED":
                self.state.delete_node(str((obj.get("metadata") or {}).get("name", "")))
            else:
                self.state.put_node(self._parse_node(obj))
        except Exception as exc:
            self._malformed("node", obj, exc)
            return
        self._changed()

    def _pod_event(self, kind: str, obj: dict[str, Any]) -> None:
        try:
            key = pod_key(obj)
            hold = None if kind == "DELETED" else self._parse_pod(obj)
            claim = None if kind == "DELETED" else self._claim(obj, key)
        except Exception as exc:
            self._malformed("pod", obj, exc)
            return
        self.state.put_pod(key, hold)
        if isinstance(self.state, PodClusterState):
            self.state.put_claim(key, claim)
        self._changed()

    def _wake(self) -> None:
        """A watch works again: the view may be fresh again, so plan now (drains the stale
        view withheld are admitted at once, not at the next unrelated change)."""
        self._changed()
        if self.on_change is not None and self.synced:
            try:
                self.on_change(frozenset())
            except Exception:
                log.exception("on_change callback failed")

    def _changed(self) -> None:
        if self.on_change is None:
            return
        changed = self.state.flush()
        if changed:
            try:
                self.on_change(changed)
            except Exception:  # the engine's callback must not break the watch loop
                log.exception("on_change callback failed")

    # -- public ----------------------------------------------------------------------------
    @property
    def synced(self) -> bool:
        if not (self.nodes.listed and self.pods.listed):
            return False
        now = self.clock()
        for r in (self.nodes, self.pods):
            if r.broken_since is not None and now - r.broken_since > self.settings.stale_after:
                return False
        return True

    def take_skips(self) -> list[str]:
        """Skipped-value warnings since the last call (for ``io.syncd.node.skipped.v1``)."""
        out = list(self._skips)
        self._skips.clear()
        return out

    def view(self) -> KubeView:
        self.state.expire_tombstones()
        # What expiring tombstones changed is told like any change: passes plan only the
        # nodes they are told about (syncd.core.planner, ``only``).
        self._changed()
        return self.state.view(self.synced)

    async def run(self) -> None:
        """Watch nodes and pods until cancelled; never raises on API errors."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.nodes.run(), name="syncd-kube-nodes")
            group.create_task(self.pods.run(), name="syncd-kube-pods")
