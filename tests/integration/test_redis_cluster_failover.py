"""A master of the Redis Cluster dies mid-traffic (SIGKILL): its replica takes over, the
server's bus places the lost shard channels on the new master and catches its subscribers up
from history (or sends `gap`), publishing resumes, and /health/ready says what happened.
The cluster is this module's own (tests/support/redis_cluster.py), so killing one of its
masters disturbs nobody else."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from server.hub.hub import hub_key
from server.hub.publisher import ChannelPublisher
from server.kernel.settings import Settings
from storage.redis import create_redis
from tests.conftest import make_settings
from tests.integration.test_realtime_channels import subscribe, unique
from tests.support.accounts import Account
from tests.support.redis_cluster import RedisClusterNodes, start_cluster
from tests.support.waiting import eventually

CHANNELS = 6

pytestmark = [pytest.mark.slow]  # its own cluster: ~7 s to start, ~5 s of failover


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[RedisClusterNodes]:
    nodes = start_cluster()
    yield nodes
    nodes.stop()


@pytest.fixture
def settings(
    base_settings: Settings, own_cluster: RedisClusterNodes, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.setenv("REDIS_URL", own_cluster.url)
    return make_settings()


class Traffic:
    """Publishes 0, 1, 2... on every channel in turn, as another node would; remembers
    what was acknowledged and what failed."""

    def __init__(self, publisher: ChannelPublisher, channels: list[str]) -> None:
        self.publisher = publisher
        self.channels = channels
        self.acked: dict[str, list[int]] = {channel: [] for channel in channels}
        self.failed = 0
        self.last_ack_at: dict[str, float] = {}

    async def run(self) -> None:
        n = 0
        while True:
            for channel in self.channels:
                try:
                    async with asyncio.timeout(2):
                        await self.publisher.publish_value(channel, {"n": n})
                    self.acked[channel].append(n)
                    self.last_ack_at[channel] = time.monotonic()
                except Exception:
                    self.failed += 1
            n += 1
            await asyncio.sleep(0.02)


async def readiness(client: Any, seen: list[tuple[int, Any]]) -> None:
    while True:
        response = await client.get("/health/ready")
        seen.append((response.status, await response.json()))
        await asyncio.sleep(0.1)


async def received(ws: Any, traffic: Traffic) -> dict[str, list[Any]]:
    """Every publication (its n) and gap per channel, until each channel's last
    acknowledged publication arrived."""
    got: dict[str, list[Any]] = {channel: [] for channel in traffic.channels}

    def done() -> bool:
        return all(not traffic.acked[c] or traffic.acked[c][-1] in got[c] for c in traffic.channels)

    async with asyncio.timeout(20):
        while not done():
            frame = await ws.receive_json()
            if frame["type"] == "publication":
                got[frame["channel"]].append(frame["data"]["n"])
            elif frame["type"] == "gap":
                got[frame["channel"]].append("gap")
    return got


async def test_a_master_dies_mid_traffic_and_everything_recovers(
    client: Any, alice: Account, own_cluster: RedisClusterNodes, settings: Settings
) -> None:
    ws = await client.ws_connect("/realtime/ws", headers=alice.headers)
    assert (await ws.receive_json(timeout=5))["type"] == "connected"
    channels = [unique() for _ in range(CHANNELS)]
    for channel in channels:
        await subscribe(ws, channel)
    redis = create_redis(settings)
    traffic = Traffic(ChannelPublisher(settings, redis), channels)
    health: list[tuple[int, Any]] = []
    tasks = [asyncio.create_task(traffic.run()), asyncio.create_task(readiness(client, health))]
    try:
        await eventually(lambda: asyncio.sleep(0, all(len(a) > 10 for a in traffic.acked.values())))
        victim = redis.get_node_from_key(channels[0])  # type: ignore[attr-defined]
        killed_at = time.monotonic()
        own_cluster.kill_master(victim.port)
        # The replica is promoted and publishing on the victim's channels resumes.
        await eventually(
            lambda: asyncio.sleep(0, traffic.last_ack_at.get(channels[0], 0) > killed_at + 0.5),
            timeout=30,
        )
        resumed_after = traffic.last_ack_at[channels[0]] - killed_at
        await asyncio.sleep(0.5)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    got = await received(ws, traffic)
    for channel in channels:
        numbers = [n for n in got[channel] if n != "gap"]
        assert numbers == sorted(set(numbers)), f"{channel}: out of order or twice"
        if "gap" not in got[channel]:  # recovered: nothing acknowledged is missing
            assert set(traffic.acked[channel]) <= set(numbers), channel
    bus = client.app[hub_key].bus
    assert bus.reconnects >= 1  # the bus noticed the lost master and caught up
    # /health/ready: ready before, Redis reported down while the slots had no master (the
    # cluster state is `fail` until the replica is promoted), ready again at the end.
    assert health[0][0] == 200
    outage = [body for status, body in health if status == 503]
    assert outage, "the failover went unnoticed by /health/ready"
    for body in outage:
        assert body["error"]["details"]["down"] == ["redis"], body
    final = await client.get("/health/ready")
    assert final.status == 200, await final.text()
    print(
        f"publishing resumed {resumed_after:.1f} s after the kill; {traffic.failed} publish "
        f"attempts failed; readiness: {[status for status, _ in health]}"
    )
    await ws.close()
    await redis.aclose()
