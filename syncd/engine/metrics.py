"""Prometheus metrics. No node names as labels: cardinality stays flat at 10,000 nodes.

They follow Prometheus' naming conventions (https://prometheus.io/docs/practices/naming/):
cumulative counts are counters named ``*_total`` (also those the components keep themselves
and that are read at scrape time), there are no ``*_created`` series (one per label set,
which nothing here queries), ``syncd_build_info`` carries the version as labels, and the
process metrics (``process_*``: CPU, memory, open files) come with them. ``/metrics`` answers
in the OpenMetrics format when the scraper asks for it in ``Accept`` (Prometheus does), else
in the classic text format.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

# Process-wide in prometheus_client; syncd is the whole process.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: ``{metric name: {label values: value}}`` as read from the components.
LiveValues = dict[str, dict[tuple[str, ...], float]]


@dataclass(frozen=True, slots=True)
class Live:
    """One metric read at scrape time. A counter's name has no ``_total``: it is added."""

    name: str
    kind: str  # "counter" or "gauge"
    help: str
    labels: tuple[str, ...] = ()


class _LiveCollector(Collector):
    """Values read from the components at scrape time (outbox backlog, watcher counters)."""

    def __init__(self, read: Callable[[], LiveValues], specs: tuple[Live, ...]) -> None:
        self._read = read
        self._specs = specs

    def collect(self) -> Iterator[Metric]:
        values = self._read()
        for spec in self._specs:
            family: CounterMetricFamily | GaugeMetricFamily
            if spec.kind == "counter":
                family = CounterMetricFamily(spec.name, spec.help, labels=list(spec.labels))
            else:
                family = GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))
            for key, value in values.get(spec.name, {}).items():
                family.add_metric(list(key), value)
            yield family


class Metrics:
    def __init__(self, *, version: str = "") -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        if not version:
            from syncd import __version__

            version = __version__
        Info("syncd_build", "The running syncd: version and Python.", registry=r).info(
            {"version": version, "python": platform.python_version()})
        self.reconcile_seconds = Histogram(
            "syncd_reconcile_duration_seconds", "Time of one reconcile (read, plan, write).",
            registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.gc_pause = Histogram(
            "syncd_gc_pause_seconds", "Garbage collector pauses (the event loop stops).",
            ["generation"], registry=r,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5))
        self.gc_pause_max = Gauge("syncd_gc_pause_max_seconds",
                                  "The longest garbage collector pause since start.", registry=r)
        self.reconciles = Counter("syncd_reconciles_total", "Reconciles run.", ["trigger"],
                                  registry=r)
        self.pass_stage = Histogram(
            "syncd_reconcile_stage_seconds", "Time of one stage of a reconcile: read (Slurm, "
            "when the pass reads), plan, confirm (the cheap read before state writes), write "
            "(Slurm writes and events).", ["stage"], registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.confirms = Counter(
            "syncd_confirmed_nodes_total", "State writes planned on the last Slurm view, by "
            "what the confirming read found: agreed (written) or disagreed (read and planned "
            "again).", ["outcome"], registry=r)
        self.storm_deferrals = Counter(
            "syncd_storm_deferrals_total", "Passes given up before writing because a mass "
            "event began meanwhile (their nodes are planned with the rest of it).", registry=r)
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
        self.slurm_info = Gauge("syncd_slurm_info", "1, labelled with the Slurm release and "
                                "backend in use.", ["version", "backend"], registry=r)
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

    def add_live(self, read: Callable[[], LiveValues], specs: tuple[Live, ...]) -> None:
        self.registry.register(_LiveCollector(read, specs))

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The scrape body and its Content-Type, in the format ``accept`` asks for."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type
