"""Prometheus metrics every service exposes at `/metrics`.

One registry per process: in the all-in-one run all six services report through it, told apart
by the `handler` (`<service>.<method>`) and `service` labels.
"""
from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_HANDLED = Counter(
    "acikkapi_events_handled_total", "Events handled successfully", ["event", "handler"],
    registry=REGISTRY,
)
EVENTS_FAILED = Counter(
    "acikkapi_events_failed_total", "Event handler failures (each attempt)", ["event", "handler"],
    registry=REGISTRY,
)
EVENTS_DEAD_LETTERED = Counter(
    "acikkapi_events_dead_lettered_total", "Events parked in the dead-letter queue",
    ["event", "handler"], registry=REGISTRY,
)
EVENT_LATENCY = Histogram(
    "acikkapi_event_handler_seconds", "Event handler latency", ["event", "handler"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
EVENT_BATCH_EVENTS = Histogram(
    "acikkapi_event_batch_events", "Events per batch of a batched handler", ["handler"],
    buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 20000), registry=REGISTRY,
)
EVENT_BATCH_SECONDS = Histogram(
    "acikkapi_event_batch_seconds", "Time a batched handler took over a batch", ["handler"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=REGISTRY,
)
EVENTS_PUBLISHED = Counter(
    "acikkapi_events_published_total", "Events confirmed by the broker", ["event", "producer"],
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge(
    "acikkapi_outbox_pending", "Outbox entries seen waiting at the last sweep", ["service"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "acikkapi_http_requests_total", "HTTP requests", ["service", "method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "acikkapi_http_request_seconds", "HTTP request latency", ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)
NOTIFICATIONS = Counter(
    "acikkapi_notifications_total", "Outbound messages by channel and outcome",
    ["channel", "outcome"], registry=REGISTRY,
)

SLA_SWEEP_SECONDS = Histogram(
    "acikkapi_sla_sweep_seconds", "Duration of one SLA sweep",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30), registry=REGISTRY,
)
SLA_SWEEP_LAG = Gauge(
    "acikkapi_sla_sweep_lag_seconds", "How far behind the end of the last ended minute the "
    "SLA sweep's cursor is (alert when it grows)", registry=REGISTRY,
)
SLA_FIRED = Counter(
    "acikkapi_sla_fired_total", "SLA events fired by the sweep (warnings, breaches, "
    "escalations, notices)", registry=REGISTRY,
)


class _InstitutionGauges:
    """The business gauges (issue 12): open backlog and overdue count per institution, read
    from reporting's aggregates when Prometheus scrapes (never stale, nothing kept here)."""

    def __init__(self, read: Callable[[], list[tuple[str, int, int]]]):
        self.read = read

    def collect(self):
        backlog = GaugeMetricFamily("acikkapi_open_backlog", "Open applications",
                                    labels=["institution"])
        overdue = GaugeMetricFamily("acikkapi_overdue_cases",
                                    "Open applications past their resolve deadline",
                                    labels=["institution"])
        try:
            rows = self.read()
        except Exception:  # a scrape must not fail because the database blinked
            rows = []
        for institution, open_count, overdue_count in rows:
            backlog.add_metric([institution], open_count)
            overdue.add_metric([institution], overdue_count)
        return [backlog, overdue]

    def describe(self):
        return []


_institution_gauges: list[_InstitutionGauges] = []


def register_institution_gauges(read: Callable[[], list[tuple[str, int, int]]]) -> None:
    """Expose `read()`'s `(institution, open, overdue)` rows as gauges (the latest reader
    registered wins: one per process)."""
    while _institution_gauges:
        REGISTRY.unregister(_institution_gauges.pop())
    _institution_gauges.append(_InstitutionGauges(read))
    REGISTRY.register(_institution_gauges[-1])


def exposition() -> bytes:
    """The registry in Prometheus' text format."""
    return generate_latest(REGISTRY)
