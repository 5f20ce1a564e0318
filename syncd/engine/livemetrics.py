"""Values the watcher and the outbox keep themselves, exported at scrape time. Their
cumulative counts are exported as counters (``*_total``): they only grow while the process
lives."""

from __future__ import annotations

from syncd.engine.metrics import Live, LiveValues, Metrics
from syncd.events.outbox import Outbox
from syncd.kube.watcher import Watcher


def export_live(metrics: Metrics, watcher: Watcher, outbox: Outbox) -> None:
    """Register the watcher's and the outbox's values with ``metrics``, read at scrape time."""

    def read() -> LiveValues:
        w = watcher.stats
        sinks = outbox.stats()
        spool = outbox.spool_stats()
        return {
            "syncd_spool_writable": {(): 0.0 if spool.failing else 1.0},
            "syncd_spool_write_failures": {(): float(spool.failures)},
            "syncd_spool_outages": {(): float(spool.outages)},
            "syncd_spool_buffered_events": {(): float(spool.buffered)},
            "syncd_spool_dropped_events": {(): float(spool.dropped)},
            "syncd_outbox_sink_outages": {(k,): float(s.outages) for k, s in sinks.items()},
            "syncd_outbox_backlog": {(k,): float(v) for k, v in outbox.backlog().items()},
            "syncd_outbox_delivered": {(k,): float(s.delivered) for k, s in sinks.items()},
            "syncd_outbox_failed_attempts": {(k,): float(s.failed) for k, s in sinks.items()},
            "syncd_outbox_dropped": {(k,): float(s.dropped) for k, s in sinks.items()},
            "syncd_outbox_sink_up": {(k,): float(s.healthy) for k, s in sinks.items()},
            "syncd_kubernetes_synced": {(): 1.0 if watcher.view().synced else 0.0},
            "syncd_watch_restarts": {(): float(w.watch_restarts)},
            "syncd_watch_relists": {(): float(w.relists)},
            "syncd_watch_gone_410": {(): float(w.gone_410)},
            "syncd_watch_errors": {(): float(w.errors)},
            "syncd_kubernetes_skipped": {
                ("value",): float(w.skipped),
                ("name_unmapped",): float(watcher.state.misses_total),
                ("name_collision",): float(watcher.state.collisions_total)},
        }

    sink = ("sink",)
    metrics.add_live(read, (
        Live("syncd_spool_writable", "gauge",
             "0 while the event spool cannot be written (events.on_spool_failure applies)."),
        Live("syncd_spool_write_failures", "counter", "Failed spool write attempts."),
        Live("syncd_spool_outages", "counter", "Times the spool started failing."),
        Live("syncd_spool_buffered_events", "gauge",
             "Events waiting in memory because the spool could not take them."),
        Live("syncd_spool_dropped_events", "counter",
             "Events never stored: the spool failed and the memory buffer was full."),
        Live("syncd_outbox_sink_outages", "counter",
             "Times a sink became unreachable.", sink),
        Live("syncd_outbox_backlog", "gauge",
             "Events spooled but not yet delivered, per sink.", sink),
        Live("syncd_outbox_delivered", "counter", "Events delivered per sink.", sink),
        Live("syncd_outbox_failed_attempts", "counter",
             "Failed delivery attempts per sink (each is retried).", sink),
        Live("syncd_outbox_dropped", "counter",
             "Events the spool bound dropped before a sink got them.", sink),
        Live("syncd_outbox_sink_up", "gauge",
             "1 when the last delivery to the sink succeeded.", sink),
        Live("syncd_kubernetes_synced", "gauge",
             "1 while the watcher's Kubernetes view is fresh."),
        Live("syncd_watch_restarts", "counter", "Watch streams restarted."),
        Live("syncd_watch_relists", "counter", "Full relists (410 Gone, errors)."),
        Live("syncd_watch_gone_410", "counter", "410 Gone answers (history compacted)."),
        Live("syncd_watch_errors", "counter", "Kubernetes API errors seen by the watcher."),
        Live("syncd_kubernetes_skipped", "counter", "Kubernetes input refused, by kind.",
             ("kind",)),
    ))
