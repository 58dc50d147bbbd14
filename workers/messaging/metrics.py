"""The messaging families of GET /metrics. In the server, read at scrape time: messages
accepted and relayed (counters the acceptor and the relay keep) and the outbox backlog (a
query, refreshed before a scrape at most every few seconds, server/kernel/metrics.py). In
the worker: how long jobs take, by kind and outcome (`JobDurations`, observed once per job;
the worker's other families are read from its counters, workers/process.py)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Histogram
from prometheus_client.core import Metric

from server.kernel.metrics import counter, gauge
from storage import outbox
from storage.db import Pool, connect
from workers.messaging.acceptor import Acceptor
from workers.messaging.relay import OutboxRelay

JOB_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
OUTCOMES = ("processed", "retried", "dead_lettered", "requeued")


class OutboxBacklog:
    """The outbox's waiting rows and the age of the oldest, as of the last refresh."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.depth = 0
        self.oldest_age = 0.0

    async def refresh(self) -> None:
        async with connect(self._pool) as conn:
            count, age = await outbox.backlog(conn)
        self.depth, self.oldest_age = count, age or 0.0


def server_families(
    acceptor: Acceptor, relay: OutboxRelay, backlog: OutboxBacklog
) -> Iterator[Metric]:
    yield counter(
        "messaging_accepted",
        "Messages accepted into the outbox by this server (idempotent repeats not counted).",
        acceptor.accepted,
    )
    yield counter(
        "messaging_relayed",
        "Outbox messages this server's relay published to RabbitMQ (confirmed).",
        relay.relayed,
    )
    yield counter(
        "messaging_relay_refused",
        "Outbox messages the broker refused, postponed to be tried again.",
        relay.postponed,
    )
    yield gauge(
        "messaging_outbox_depth",
        "Outbox rows waiting to be published (all servers; refreshed at most every 5 s).",
        backlog.depth,
    )
    yield gauge(
        "messaging_outbox_lag_seconds",
        "Age of the oldest outbox row waiting (0 when empty; refreshed at most every 5 s).",
        backlog.oldest_age,
    )


class JobDurations:
    """messaging_job_duration_seconds{kind,outcome}, in a registry of the caller's."""

    def __init__(self) -> None:
        self.histogram = Histogram(
            "messaging_job_duration_seconds",
            "Time a worker spent on a message (the job, its commit and the ack or the "
            "retry/dead-letter publish), by message kind and outcome.",
            ["kind", "outcome"],
            buckets=JOB_BUCKETS,
            registry=None,
        )
        self._children: dict[tuple[str, str], Histogram] = {}

    def observe(self, kind: str, outcome: str, seconds: float) -> None:
        child = self._children.get((kind, outcome))
        if child is None:
            child = self._children[(kind, outcome)] = self.histogram.labels(kind, outcome)
        child.observe(seconds)
