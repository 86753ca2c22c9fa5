"""What the bot counts, for Prometheus (``GET /metrics``).

``Metrics`` is the interface every instrumented part holds, and its own
no-op: with the HTTP server off nothing is counted and each hook returns at
once. ``PrometheusMetrics`` counts into its own ``CollectorRegistry`` (never
prometheus_client's global one), so one process -- or one test -- can hold
several bots. The composition root (bot/app.py) builds one and hands it to
the poller, the outbox and the commands; nothing is built at import time.

The hooks sit on hot paths (the outbox delivers in ~0.1 ms a row), so each
is a few dictionary look-ups: labelled children are cached per label
tuple instead of going through ``labels()`` (a lock and a dict) each time.

Gauges that describe state rather than events -- outbox depth, adapters
connected, the store writable -- are set when scraped (``refresh`` in the
HTTP server), not kept up to date on every change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

POLL_OUTCOMES = ("new", "nothing_new", "unchanged", "failed")
DELIVERY_OUTCOMES = ("sent", "retry", "failed")


class Metrics:
    """The hooks, doing nothing (the HTTP server is off)."""

    enabled = False

    def polled(self, source: str, outcome: str, seconds: float, *, new_items: int = 0,
               event_kinds: tuple[str, ...] = (), succeeded_at: datetime | None = None) -> None:
        """One poll that ran (not one skipped): ``outcome`` in POLL_OUTCOMES."""

    def delivered(self, platform: str, outcome: str, *, since_detected_s: float | None = None,
                  since_published_s: float | None = None) -> None:
        """One delivery attempt's outcome (DELIVERY_OUTCOMES); for "sent", how
        long after the event was detected and the item published."""

    def command(self, name: str, platform: str, seconds: float) -> None: ...

    def searched(self, seconds: float) -> None: ...

    def loop_lag(self, seconds: float) -> None: ...

    def set_state(self, *, outbox_depth: Mapping[str, int], adapters: Mapping[str, bool],
                  store_writable: bool) -> None: ...

    def render(self) -> tuple[bytes, str]:
        """(body, content type) of the text exposition format."""
        return b"", "text/plain; version=0.0.4; charset=utf-8"


def _buckets(*values: float) -> tuple[float, ...]:
    return (*values, float("inf"))


class PrometheusMetrics(Metrics):
    enabled = True

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        r = self.registry = CollectorRegistry(auto_describe=True)
        self._polls = Counter("showbot_polls", "Polls that ran, by source and outcome",
                              ("source", "outcome"), registry=r)
        self._poll_seconds = Histogram("showbot_poll_duration_seconds", "Time one poll took (fetch, decide, write)",
                                       ("source",), registry=r,
                                       buckets=_buckets(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self._last_success = Gauge("showbot_last_successful_poll_timestamp_seconds",
                                   "When a poll of the source last succeeded (Unix time)", ("source",), registry=r)
        self._new_items = Counter("showbot_new_items", "Items seen for the first time, by source",
                                  ("source",), registry=r)
        self._events = Counter("showbot_events", "Events created (announcements to make), by kind",
                               ("kind",), registry=r)
        self._depth = Gauge("showbot_outbox_depth", "Outbox rows not delivered yet, by platform",
                            ("platform",), registry=r)
        self._deliveries = Counter("showbot_deliveries", "Delivery attempts, by platform and outcome",
                                   ("platform", "outcome"), registry=r)
        self._since_detected = Histogram(
            "showbot_delivery_since_detected_seconds", "From detecting an item to its announcement going out",
            ("platform",), registry=r, buckets=_buckets(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 86400))
        self._since_published = Histogram(
            "showbot_delivery_since_published_seconds", "From an item's publication to its announcement going out",
            ("platform",), registry=r,
            buckets=_buckets(60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400))
        self._commands = Counter("showbot_commands", "Commands answered, by command and platform",
                                 ("command", "platform"), registry=r)
        self._command_seconds = Histogram(
            "showbot_command_duration_seconds", "Time to answer a command", ("command",), registry=r,
            buckets=_buckets(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self._search_seconds = Histogram(
            "showbot_search_duration_seconds", "Time of one catalogue search in the store", registry=r,
            buckets=_buckets(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
        self._adapter = Gauge("showbot_adapter_connected", "1 while the chat adapter is connected",
                              ("platform",), registry=r)
        self._writable = Gauge("showbot_store_writable", "1 while the database takes writes", registry=r)
        self._lag = Histogram("showbot_event_loop_lag_seconds", "How late the event loop ran a timer",
                              registry=r, buckets=_buckets(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
        self._children: dict[tuple[object, ...], Any] = {}
        self._depth_platforms: set[str] = set()

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def polled(self, source: str, outcome: str, seconds: float, *, new_items: int = 0,
               event_kinds: tuple[str, ...] = (), succeeded_at: datetime | None = None) -> None:
        self._child(self._polls, source, outcome).inc()
        self._child(self._poll_seconds, source).observe(seconds)
        if new_items:
            self._child(self._new_items, source).inc(new_items)
        for kind in event_kinds:
            self._child(self._events, kind).inc()
        if succeeded_at is not None:
            self._child(self._last_success, source).set(succeeded_at.timestamp())

    def delivered(self, platform: str, outcome: str, *, since_detected_s: float | None = None,
                  since_published_s: float | None = None) -> None:
        self._child(self._deliveries, platform, outcome).inc()
        if since_detected_s is not None:
            self._child(self._since_detected, platform).observe(max(0.0, since_detected_s))
        if since_published_s is not None:
            self._child(self._since_published, platform).observe(max(0.0, since_published_s))

    def command(self, name: str, platform: str, seconds: float) -> None:
        self._child(self._commands, name, platform).inc()
        self._child(self._command_seconds, name).observe(seconds)

    def searched(self, seconds: float) -> None:
        self._search_seconds.observe(seconds)

    def loop_lag(self, seconds: float) -> None:
        self._lag.observe(max(0.0, seconds))

    def set_state(self, *, outbox_depth: Mapping[str, int], adapters: Mapping[str, bool],
                  store_writable: bool) -> None:
        # A platform seen before reads 0 once drained, not its last depth.
        self._depth_platforms.update(outbox_depth)
        for platform in self._depth_platforms:
            self._child(self._depth, platform).set(outbox_depth.get(platform, 0))
        for platform, up in adapters.items():
            self._child(self._adapter, platform).set(1 if up else 0)
        self._writable.set(1 if store_writable else 0)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
