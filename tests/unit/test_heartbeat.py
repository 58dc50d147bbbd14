"""The heartbeat's ring (server/hub/heartbeat.py), on a clock the test moves."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from server.hub.heartbeat import TICK, Heartbeat


@dataclass(eq=False)
class Peer:
    seen: float = 0.0
    closed: bool = False
    pinged: float = 0.0
    beat: int = 0
    pings: list[float] = field(default_factory=list)
    dropped: bool = False

    def ping(self, now: float) -> None:
        self.pinged = now
        self.pings.append(now)

    def unresponsive(self) -> None:
        self.closed = self.dropped = True


def run(heartbeat: Heartbeat, until: float, answer: bool, peers: list[Peer]) -> None:
    """Visit the buckets as run() does, TICK after TICK, from 0 to `until`; peers that
    `answer` send a pong at once."""
    turn, now = 0, 0.0
    while now < until:
        now += TICK
        heartbeat.visit(turn, now)
        turn += 1
        if answer:
            for peer in peers:
                if peer.pinged > peer.seen:
                    peer.seen = now


def test_connections_spread_over_the_ring_and_leave_it() -> None:
    heartbeat = Heartbeat(30)
    assert heartbeat.period == 15  # each connection is visited every WS_HEARTBEAT/2
    peers = [Peer() for _ in range(61)]
    for peer in peers:
        heartbeat.add(peer)
    sizes = [len(bucket) for bucket in heartbeat._buckets]
    assert len(sizes) == 30 and max(sizes) - min(sizes) <= 1
    for peer in peers:
        heartbeat.remove(peer)
    assert all(not bucket for bucket in heartbeat._buckets)


def test_answering_peers_are_pinged_once_per_interval() -> None:
    heartbeat = Heartbeat(30)
    peers = [Peer() for _ in range(10)]
    for peer in peers:
        heartbeat.add(peer)
    run(heartbeat, 300, answer=True, peers=peers)
    for peer in peers:
        assert not peer.dropped
        assert 9 <= len(peer.pings) <= 10, peer.pings
        gaps = [b - a for a, b in pairwise(peer.pings)]
        assert all(29 <= gap <= 30 + heartbeat.period for gap in gaps), gaps
    assert heartbeat.dropped == 0


def test_a_peer_that_does_not_answer_is_dropped_after_half_an_interval() -> None:
    heartbeat = Heartbeat(30)
    peer = Peer()
    heartbeat.add(peer)
    run(heartbeat, 100, answer=False, peers=[peer])
    assert peer.dropped and len(peer.pings) == 1
    assert heartbeat.dropped == 1 and heartbeat.pings == 1


def test_a_talking_peer_is_never_pinged() -> None:
    heartbeat = Heartbeat(30)
    peer = Peer()
    heartbeat.add(peer)
    turn, now = 0, 0.0
    while now < 300:
        now += TICK
        peer.seen = now - 1  # a message a second ago
        heartbeat.visit(turn, now)
        turn += 1
    assert peer.pings == [] and not peer.dropped


def test_closed_connections_are_left_alone() -> None:
    heartbeat = Heartbeat(2)
    peer = Peer(closed=True)
    heartbeat.add(peer)
    run(heartbeat, 20, answer=False, peers=[peer])
    assert peer.pings == [] and not peer.dropped


def test_a_short_interval_has_one_bucket() -> None:
    heartbeat = Heartbeat(0.4)
    assert heartbeat.period == TICK
    peer = Peer()
    heartbeat.add(peer)
    run(heartbeat, 10, answer=True, peers=[peer])
    assert len(peer.pings) >= 5 and not peer.dropped
