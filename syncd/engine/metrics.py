"""Prometheus metrics. No node names as labels: cardinality stays flat at 10,000 nodes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _Live(Collector):
    """Values read from the components at scrape time (outbox backlog, watcher counters)."""

    def __init__(self, read: Callable[[], dict[str, dict[tuple[str, ...], float]]],
                 labels: dict[str, tuple[str, ...]], help_: dict[str, str]) -> None:
        self._read = read
        self._labels = labels
        self._help = help_

    def collect(self) -> Iterator[GaugeMetricFamily]:
        values = self._read()
        for name, labels in self._labels.items():
            fam = GaugeMetricFamily(name, self._help[name], labels=list(labels))
            for key, value in values.get(name, {}).items():
                fam.add_metric(list(key), value)
            yield fam


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.reconcile_seconds = Histogram(
            "syncd_reconcile_duration_seconds", "Time of one reconcile (read, plan, write).",
            registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.reconciles = Counter("syncd_reconciles_total", "Reconciles run.", ["trigger"],
                                  registry=r)
        self.actions = Counter("syncd_actions_total", "Node changes by kind and outcome.",
                               ["kind", "outcome"], registry=r)
        self.slurm_calls = Counter("syncd_slurm_calls_total", "Calls to Slurm by operation.",
                                   ["op", "outcome"], registry=r)
        self.drifted = Gauge("syncd_drifted_nodes", "Nodes where Slurm and Kubernetes disagree.",
                             registry=r)
        self.withheld = Gauge("syncd_withheld_drains", "Drains the breaker holds back now.",
                              registry=r)
        self.breaker_open = Gauge("syncd_breaker_open", "1 while the blast-radius breaker is open.",
                                  registry=r)
        self.leader = Gauge("syncd_leader", "1 while this replica holds the lease.", registry=r)
        self.slurm_up = Gauge("syncd_slurm_up", "1 when the last Slurm read succeeded.",
                              registry=r)
        self.events = Counter("syncd_events_published_total", "Events written to the outbox.",
                              ["type"], registry=r)
        self.mirrored = Gauge(
            "syncd_mirrored_nodes", "Managed nodes Slurm has out of service by someone other "
            "than syncd: those the mirror marks on their Kubernetes node (policy.mirror).",
            registry=r)
        self.mirror_writes = Counter(
            "syncd_mirror_writes_total", "Writes of the mirror to Kubernetes nodes, by what "
            "(condition, taint) and outcome (ok, unchanged, conflict, failed).",
            ["what", "outcome"], registry=r)

    def add_live(self, read: Callable[[], dict[str, dict[tuple[str, ...], float]]],
                 labels: dict[str, tuple[str, ...]], help_: dict[str, str]) -> None:
        self.registry.register(_Live(read, labels, help_))
