"""The cloud server's /metrics, in Prometheus text format (prometheus_client), one registry per
front so several fronts in one process (tests) do not share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self, prediction_log=lambda: None):
        """`prediction_log`: returns the PredictionLog now serving (or None), read at scrape time."""
        self.registry = CollectorRegistry()
        self.requests = Counter("kit_cloud_requests", "HTTP requests answered, by path and status",
                                ["path", "status"], registry=self.registry)
        self.errors = Counter("kit_cloud_request_errors", "HTTP answers with a 4xx or 5xx status, by status",
                              ["status"], registry=self.registry)
        self.latency = Histogram("kit_cloud_request_latency_seconds",
                                 "POST /invocations, from the request read to the answer ready",
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("kit_cloud_batch_size", "requests scored together in one call of a worker",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.served = Gauge("kit_cloud_served_version", "1 for the model version answering new requests",
                            ["model", "version"], registry=self.registry)
        self.registry.register(_PredictionLogCollector(prediction_log))

    def answered(self, path: str, status: int) -> None:
        self.requests.labels(path, str(status)).inc()
        if status >= 400:
            self.errors.labels(str(status)).inc()

    def serving(self, model: str, version: str, previous: str | None = None) -> None:
        if previous is not None:
            self.served.remove(model, previous)
        self.served.labels(model, version).set(1)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class _PredictionLogCollector:
    """The prediction log's own counters (kept by its writer thread), read when scraped."""

    def __init__(self, prediction_log):
        self.prediction_log = prediction_log

    def collect(self):
        log = self.prediction_log()
        written = CounterMetricFamily("kit_cloud_prediction_log_records_written",
                                      "prediction-log records (one per row) written to disk")
        dropped = CounterMetricFamily("kit_cloud_prediction_log_requests_dropped",
                                      "answered requests the prediction log could not record (writer behind, "
                                      "or the disk refused them); said on stderr too")
        written.add_metric([], log.written if log else 0)
        dropped.add_metric([], log.dropped if log else 0)
        yield written
        yield dropped
