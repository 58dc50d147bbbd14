"""The server on a real Redis Cluster (three masters, a replica each: tests/support/
redis_cluster.py): fan-out by sharded pub/sub, each master carrying only its channels, and a
representative set of the realtime and auth tests run again on the cluster (the whole
suites, signaling included, run there with REDIS_TEST_CLUSTER=1, docs/OPERATIONS.md).

Not here by default: the WebRTC room and signaling tests. They pass on the cluster, but a
room leave that races the app's shutdown sometimes reaches the cluster client after it was
closed, which opens a connection nobody closes (a ResourceWarning, an error under this
suite's warning filter). To be fixed: leaves must finish before Redis closes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from server.kernel.settings import Settings
from storage.redis import cluster_nodes
from tests.conftest import make_settings
from tests.integration.test_auth_throttle import (  # noqa: F401  (run here on the cluster)
    account,
    test_success_starts_the_pair_over,
    test_the_pair_waits_longer_after_each_failure,
)
from tests.integration.test_auth_tickets import (  # noqa: F401
    test_ticket_works_once_for_its_session,
)
from tests.integration.test_realtime_binary import (  # noqa: F401
    test_binary_message_reaches_channel_subscribers,
)
from tests.integration.test_realtime_channels import (  # noqa: F401
    subscribe,
    test_fifty_publications_reach_every_subscriber_once_in_order,
    unique,
)
from tests.integration.test_realtime_presence import (  # noqa: F401
    test_join_and_leave_events,
    test_members_are_listed_and_leave_when_disconnected,
)
from tests.integration.test_realtime_recovery import (  # noqa: F401
    test_publishing_goes_on_after_redis_forgets_its_scripts,
    test_recovery_during_a_stream_of_publications_misses_nothing,
)
from tests.integration.test_realtime_revocation import (  # noqa: F401
    test_logout_closes_the_sessions_connections_only,
    test_revoked_api_key_connection_is_closed,
)
from tests.integration.test_realtime_ws import (  # noqa: F401
    connect,
    next_of,
    test_publish_reaches_every_subscriber_with_offsets,
)
from tests.support.accounts import Account
from tests.support.redis_cluster import RedisClusterNodes


@pytest.fixture
def settings(
    base_settings: Settings, redis_cluster: RedisClusterNodes, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """Every test of this module, the imported ones included, runs on the cluster (through
    the environment, so apps that tests build with settings of their own use it too)."""
    monkeypatch.setenv("REDIS_URL", redis_cluster.url)
    return make_settings()


async def test_the_url_lists_seed_nodes_with_credentials() -> None:
    nodes, options = cluster_nodes("rediss+cluster://me:s%40cret@a:7000,b:7001")
    assert nodes == [("a", 7000), ("b", 7001)]
    assert options == {"ssl": True, "username": "me", "password": "s@cret"}
    with pytest.raises(ValueError, match="host:port"):
        cluster_nodes("redis+cluster://a:7000,b")


async def test_the_app_uses_a_cluster_client(client: Any) -> None:
    from storage.redis import redis_key

    assert isinstance(client.app[redis_key], RedisCluster)


async def shard_channels(port: int) -> set[str]:
    node = Redis(port=port)
    try:
        names = await node.execute_command("PUBSUB", "SHARDCHANNELS")
        plain = await node.execute_command("PUBSUB", "CHANNELS")
        assert plain == [], "nothing is subscribed with plain SUBSCRIBE on a cluster"
        return {name.decode() for name in names}
    finally:
        await node.aclose()


async def test_each_master_carries_only_the_channels_of_its_slots(
    client: Any, alice: Account, redis_cluster: RedisClusterNodes
) -> None:
    ws = await connect(client, alice)
    channels = [unique() for _ in range(12)]
    for channel in channels:
        await subscribe(ws, channel)
    masters = redis_cluster.masters()
    seen = {port: await shard_channels(port) for port in masters}
    cluster = RedisCluster(host="127.0.0.1", port=masters[0])
    try:
        await cluster.initialize()
        for port, names in seen.items():
            ours = {n for n in names if any(n.endswith("{" + c + "}") for c in channels)}
            for name in ours:
                assert cluster.get_node_from_key(name).port == port  # type: ignore[union-attr]
            seen[port] = ours
    finally:
        await cluster.aclose()
    assert sum(len(names) for names in seen.values()) == len(channels)  # each once
    assert sum(1 for names in seen.values() if names) >= 2  # spread over the shards
    # A publication reaches the subscriber through its channel's shard.
    await ws.send_json({"type": "publish", "channel": channels[0], "data": {"n": 1}})
    publication = await next_of(ws, "publication")
    assert (publication["channel"], publication["data"]) == (channels[0], {"n": 1})
    await ws.close()


async def test_history_keys_and_bus_of_a_channel_share_one_slot(client: Any) -> None:
    from server.hub.history import History
    from storage.redis import redis_key

    cluster = client.app[redis_key]
    history = History(cluster, "p", 10, 60)
    for channel in ("public:a", "public:{odd}", "user:42"):
        slots = {cluster.keyslot(k) for k in [*history.keys(channel), history.bus_channel(channel)]}
        assert len(slots) == 1, channel
    await asyncio.sleep(0)


async def test_worker_heartbeats_are_read_across_slots(client: Any) -> None:
    from storage import heartbeats
    from storage.redis import redis_key

    cluster = client.app[redis_key]
    prefix = unique("hb")
    for n in range(5):
        await heartbeats.announce(cluster, prefix, {"worker_id": f"w{n}", "at": 1e12}, 30)
    assert [w["worker_id"] for w in await heartbeats.live(cluster, prefix)] == [
        f"w{n}" for n in range(5)
    ]


async def test_keys_deleted_together_share_a_slot(client: Any) -> None:
    """A login pair's two counters go in one DEL (a success starts the pair over)."""
    from server.auth.throttle import LoginThrottle
    from storage.redis import redis_key

    cluster = client.app[redis_key]
    keys = LoginThrottle(make_settings(), cluster)._keys("Alice@example.com", "2001:db8::1")
    assert cluster.keyslot(keys["pair"]) == cluster.keyslot(keys["wait"])
