"""Prometheus metrics of one server (its own registry, so several apps can live in a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tunewise_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.errors = Counter(
            "tunewise_errors",
            "Requests answered 4xx/5xx by route and status",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "tunewise_request_latency_seconds",
            "Request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "tunewise_batch_size", "Inputs per forward pass", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_requests = Histogram(
            "tunewise_batch_requests",
            "Requests grouped into one forward pass",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.queue = Gauge("tunewise_queue_depth", "Jobs waiting for the model", registry=r)
        self.reloads = Counter("tunewise_reloads", "Models swapped in", ["outcome"], registry=r)
        self.tokens = Counter("tunewise_generated_tokens", "Completion tokens returned", registry=r)

    def batch(self, inputs: int, requests: int) -> None:
        self.batch_size.observe(inputs)
        self.batch_requests.observe(requests)
