"""The realtime families of GET /metrics, read at scrape time from counters the hub keeps
anyway (registry, fan-out, subscriptions, node stats) and from the upload receiver: nothing
on the delivery path touches prometheus_client. Registered by server/resources.py."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from server.files.uploads import Uploads
from server.hub.hub import Hub
from server.kernel.metrics import counter, gauge, labelled

TRANSPORTS = ("ws", "sse", "webrtc")  # always exposed, 0 when none: stable series


def realtime_families(hub: Hub, uploads: Uploads) -> Iterator[Metric]:
    registry, fanout = hub.registry, hub.fanout
    open_now = dict.fromkeys(TRANSPORTS, 0)
    queued = 0
    for connection in list(registry.connections.values()):
        open_now[connection.kind] = open_now.get(connection.kind, 0) + 1
        queued += connection.queued
    yield labelled(
        GaugeMetricFamily(
            "realtime_connections",
            "Realtime connections open on this node, by transport.",
            labels=["transport"],
        ),
        dict(open_now),
    )
    yield labelled(
        CounterMetricFamily(
            "realtime_connections_opened",
            "Realtime connections opened on this node, by transport.",
            labels=["transport"],
        ),
        {**dict.fromkeys(TRANSPORTS, 0), **registry.opened},
    )
    yield gauge("realtime_users", "Distinct users connected to this node.", len(registry.by_user))
    subscribers = list(fanout.subscribers.values())
    yield gauge("realtime_channels", "Channels with a subscriber on this node.", len(subscribers))
    yield gauge(
        "realtime_subscriptions",
        "Channel subscriptions of this node's connections.",
        sum(len(s) for s in subscribers),
    )
    yield gauge("realtime_queued_messages", "Messages waiting in send queues.", queued)
    yield counter(
        "realtime_publications",
        "Publications made through this node (every transport and the REST API).",
        hub.node_stats.published,
    )
    yield counter(
        "realtime_deliveries",
        "Channel publications handed to this node's subscribers (one per subscriber).",
        fanout.delivered,
    )
    yield counter(
        "realtime_slow_consumer_closes",
        "Connections closed for reading too slowly (close code 4008).",
        registry.slow_consumer_closes,
    )
    yield counter(
        "realtime_heartbeat_pings",
        "Pings sent to WebSockets silent for WS_HEARTBEAT seconds.",
        hub.heartbeat.pings,
    )
    yield counter(
        "realtime_heartbeat_drops",
        "WebSockets dropped for not answering a ping within WS_HEARTBEAT/2 (1006).",
        hub.heartbeat.dropped,
    )
    recoveries = hub.subscriptions.recoveries
    yield labelled(
        CounterMetricFamily(
            "realtime_recoveries",
            "Subscribes from a cursor: `recovered` (every missed publication replayed) or "
            "`failed` (the cursor is beyond the history; recovered: false).",
            labels=["result"],
        ),
        {"recovered": recoveries[True], "failed": recoveries[False]},
    )
    yield counter(
        "realtime_gaps",
        "`gap` frames sent while catching subscribers up after the bus reconnected.",
        fanout.gaps,
    )
    yield counter(
        "realtime_bus_resubscriptions",
        "Times this node's Redis pub/sub connection resubscribed after a loss.",
        fanout.resubscriptions,
    )
    yield counter(
        "realtime_upload_bytes",
        "Upload bytes stored by this node (WebSocket and HTTP uploads).",
        uploads.receiver.bytes_received,
    )
    yield gauge("realtime_uploads_in_progress", "Uploads active on this node.", len(uploads.active))
