"""Prometheus metrics shared by every service: HTTP, outbox relay and consumers."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServiceMetrics:
    """One registry per app, so two apps in one test process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=self.registry,
        )
        self.messages_consumed = Counter(
            "amqp_messages_consumed_total",
            "Consumed messages by queue and outcome (acked, duplicate, retried, dead_lettered)",
            ["queue", "outcome"],
            registry=self.registry,
        )
        self.consume_latency = Histogram(
            "amqp_message_handle_seconds",
            "Time to handle one consumed message",
            ["queue"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "amqp_batch_messages",
            "Messages handled together by a batch consumer, per batch",
            ["queue"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.outbox_published = Counter(
            "outbox_published_total",
            "Outbox rows published with a broker confirm",
            registry=self.registry,
        )
        self.outbox_pending = Gauge(
            "outbox_pending_rows",
            "Outbox rows seen unpublished at the last relay pass",
            registry=self.registry,
        )

    def consumed(self, queue: str, outcome: str) -> int:
        """How many messages of ``queue`` ended with ``outcome`` (acked, duplicate, ...)."""
        value = self.registry.get_sample_value(
            "amqp_messages_consumed_total", {"queue": queue, "outcome": outcome}
        )
        return int(value or 0)
