"""The WebRTC families of GET /metrics, read at scrape time from this process's peers:
server peers by connection state, media peers, and the bytes of bridged data channels
(the live peers' counters plus those of the peers already closed)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from server.kernel.metrics import gauge, labelled
from signaling.peers import PeerManager

STATES = ("new", "connecting", "connected", "disconnected", "failed", "closed")


def webrtc_families(peers: PeerManager) -> Iterator[Metric]:
    live = list(peers.peers.values())
    states = dict.fromkeys(STATES, 0)
    sent, received = peers.closed_traffic
    for peer in live:
        states[peer.state] = states.get(peer.state, 0) + 1
        peer_sent, peer_received = peer.data_channel_bytes()
        sent += peer_sent
        received += peer_received
    yield labelled(
        GaugeMetricFamily(
            "realtime_webrtc_peers",
            "Server WebRTC peers of this node, by connection state.",
            labels=["state"],
        ),
        dict(states),
    )
    yield gauge(
        "realtime_webrtc_media_peers", "Server peers carrying audio or video.", peers.media_peers
    )
    yield labelled(
        CounterMetricFamily(
            "realtime_webrtc_datachannel_bytes",
            "Bytes through data channels bridged to hub channels, by direction (`sent` to "
            "the peer, `received` from it).",
            labels=["direction"],
        ),
        {"sent": sent, "received": received},
    )
