"""Prometheus metrics for one application: its own registry (no process-global state of
ours), HTTP counters and a latency histogram by route template, and process metrics.

The realtime, WebRTC and messaging families are read at scrape time: each part of the
application keeps plain integer counters it already needed (nothing is incremented through
prometheus_client on a hot path), and a `FamilyCollector` turns them into metric families
when Prometheus asks. Values that need a query (the outbox backlog) come from *refreshers*,
awaited before the text is made, each with a short timeout and its answer cached briefly.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Families = Callable[[], Iterable[Metric]]
Refresher = Callable[[], Awaitable[None]]

REFRESH_TIMEOUT = 1.0  # a refresher slower than this keeps its last values
REFRESH_EVERY = 5.0  # a refresher ran this recently is not run again

log = logging.getLogger(__name__)


class FamilyCollector(Collector):
    """A custom collector: `families()` is called at scrape time and nowhere else."""

    def __init__(self, families: Families) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families()


def counter(name: str, documentation: str, value: float, **labels: str) -> Metric:
    """One counter family (`name` without `_total`) with one sample."""
    family = CounterMetricFamily(name, documentation, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def gauge(name: str, documentation: str, value: float, **labels: str) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def labelled(
    family: CounterMetricFamily | GaugeMetricFamily, values: dict[str, float]
) -> CounterMetricFamily | GaugeMetricFamily:
    """`family` (with one label) given one sample per label value."""
    for label, value in sorted(values.items()):
        family.add_metric([label], value)
    return family


class Metrics:
    def __init__(self, *, http: bool = True) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._refreshers: list[tuple[Refresher, list[float]]] = []
        if http:
            self.requests = Counter(
                "http_requests",
                "HTTP requests answered, by method, route template and status.",
                ["method", "route", "status"],
                registry=self.registry,
            )
            self.latency = Histogram(
                "http_request_duration_seconds",
                "Time to answer an HTTP request (to the start of the body for streams).",
                ["method", "route"],
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                registry=self.registry,
            )

    def collect(self, families: Families, refresh: Refresher | None = None) -> None:
        """Expose what `families()` returns at every scrape; `refresh` (optional) is awaited
        before, at most every REFRESH_EVERY seconds and for at most REFRESH_TIMEOUT."""
        self.registry.register(FamilyCollector(families))
        if refresh is not None:
            self._refreshers.append((refresh, [0.0]))

    async def scrape(self) -> bytes:
        """The registry in the Prometheus text format, refreshers run first."""
        now = time.monotonic()
        due = [
            (refresh, last) for refresh, last in self._refreshers if now - last[0] >= REFRESH_EVERY
        ]
        for _, last in due:
            last[0] = now
        if due:
            await asyncio.gather(*(_refresh(refresh) for refresh, _ in due))
        return generate_latest(self.registry)


async def _refresh(refresh: Refresher) -> None:
    try:
        await asyncio.wait_for(refresh(), REFRESH_TIMEOUT)
    except Exception as error:  # a service down: the gauge keeps its last value, marked stale
        log.debug("metrics refresh %s failed: %r", getattr(refresh, "__qualname__", refresh), error)


def bearer_matches(authorization: str, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time (on bytes: compare_digest
    refuses non-ASCII str)."""
    scheme, _, given = authorization.partition(" ")
    presented = given.strip().encode(errors="surrogateescape")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented, token.encode())


def route_label(request: web.Request) -> str:
    """The route template (`/tasks/{task_id}`), never the raw path: bounded cardinality."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[metrics_key]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = route_label(request)
        metrics.requests.labels(request.method, route, str(status)).inc()
        metrics.latency.labels(request.method, route).observe(time.perf_counter() - started)


metrics_key: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)
