"""Prometheus metrics for one process, owned by the core (``Consoles.metrics``) so that the
API, the tunnel and the broker count into the same registry without a global."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def reason_label(reason: str | None) -> str:
    """Close reasons are sentences; labels must be few."""
    text = (reason or "").lower()
    for prefix, label in (("closed by api", "api"), ("closed by the user", "user"),
                          ("closed by job", "job"), ("time limit", "time_limit"),
                          ("expired", "expired"), ("browser left", "browser_left"),
                          ("guacd", "guacd_error"), ("the console service is shutting",
                                                     "shutdown")):
        if text.startswith(prefix):
            return label
    return "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.opened = Counter("guacbridge_consoles_opened", "Consoles opened", ["sink"],
                              registry=r)
        self.closed = Counter("guacbridge_consoles_closed", "Consoles closed",
                              ["reason", "sink"], registry=r)
        self.live = Gauge("guacbridge_live_tunnels", "Tunnels open now", registry=r)
        self.tunnel_bytes = Counter("guacbridge_tunnel_characters",
                                    "Characters relayed by finished tunnels", ["direction"],
                                    registry=r)
        self.handshake = Histogram("guacbridge_guacd_handshake_seconds",
                                   "guacd handshake time", registry=r,
                                   buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 15))
        self.agent = Histogram("guacbridge_agent_seconds", "Time agents take to resolve",
                               ["agent"], registry=r,
                               buckets=(.001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.jobs = Counter("guacbridge_broker_jobs", "Broker jobs by outcome", ["outcome"],
                            registry=r)
        self.requests = Counter("guacbridge_http_requests", "HTTP requests",
                                ["route", "method", "status"], registry=r)

    def on_event(self, event: str, body: dict) -> None:
        """A Consoles listener."""
        sink = body.get("sink", "direct")
        if event == "opened":
            self.opened.labels(sink).inc()
        elif event == "closed":
            self.closed.labels(reason_label(body.get("close_reason")), sink).inc()

    def watch_guacd_pool(self, pool: Any) -> None:
        """Per-guacd gauges and counters, read from the pool when scraped: no work per tunnel."""
        self.registry.register(_PoolCollector(pool))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _PoolCollector:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("guacbridge_guacd_up", "1 while the guacd is healthy",
                               labels=["guacd"])
        live = GaugeMetricFamily("guacbridge_guacd_live_tunnels",
                                 "Tunnels through the guacd now", labels=["guacd"])
        refusals = CounterMetricFamily("guacbridge_guacd_refusals",
                                       "Connects that found the guacd unavailable",
                                       labels=["guacd"])
        for backend in self.pool.backends:
            up.add_metric([backend.name], 1 if backend.up else 0)
            live.add_metric([backend.name], backend.live)
            refusals.add_metric([backend.name], backend.refusals)
        yield from (up, live, refusals)
