"""The node's pub/sub link to Redis drops (a TCP proxy the test stops) while publications go
on through Redis itself: once the link is back, each connected subscriber is caught up from
the channel's history from its last delivered position, in order and once. A `gap` comes
only for what the history no longer holds, and its cursor is right before the first
publication that follows it (never past one still in the history)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis.asyncio

from server.app import create_app
from server.hub.history import History
from server.hub.hub import hub_key
from server.hub.publisher import ChannelPublisher
from tests.conftest import make_settings
from tests.support.accounts import Account
from tests.support.proxy import TcpProxy
from tests.support.waiting import eventually

pytestmark = [pytest.mark.usefixtures("clean_tables")]


@pytest.fixture
async def redis_proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    yield proxy
    await proxy.stop()


HISTORY_SIZE = 5  # Redis trims streams approximately (MAXLEN ~): it keeps more than that


@pytest.fixture
async def node(aiohttp_client: Any, settings: Any, redis_proxy: TcpProxy) -> Any:
    """A server whose Redis connections all go through the proxy."""
    proxied = make_settings(
        POSTGRES_DB=settings.POSTGRES_DB,
        REDIS_URL=f"redis://127.0.0.1:{redis_proxy.port}/0",
        HISTORY_SIZE=HISTORY_SIZE,
    )
    return await aiohttp_client(create_app(proxied))


@pytest.fixture
async def publisher(settings: Any) -> AsyncIterator[ChannelPublisher]:
    """Publishes straight to Redis (not through the proxy), as another node would."""
    client = redis.asyncio.Redis.from_url(settings.REDIS_URL.get_secret_value())
    yield ChannelPublisher(make_settings(HISTORY_SIZE=HISTORY_SIZE), client)
    await client.aclose()


async def subscribed_ws(node: Any, account: Account, channel: str) -> Any:
    ws = await node.ws_connect("/realtime/ws", headers=account.headers)
    assert (await ws.receive_json(timeout=5))["type"] == "connected"
    await ws.send_json({"type": "subscribe", "channel": channel})
    assert (await ws.receive_json(timeout=5))["type"] == "subscribed"
    return ws


async def frames(ws: Any, publications: int) -> list[dict[str, Any]]:
    """Frames up to the `publications`-th publication."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while sum(1 for f in got if f["type"] == "publication") < publications:
            got.append(await ws.receive_json())
    return got


async def link_down(proxy: TcpProxy, node: Any) -> None:
    """Cut the node's Redis connections; return once its bus noticed."""
    await proxy.stop()
    bus = node.app[hub_key].bus

    async def noticed() -> bool:
        return not bus.connected.is_set()

    await eventually(noticed, timeout=5)


async def publish(publisher: ChannelPublisher, channel: str, numbers: range) -> None:
    for n in numbers:
        await publisher.publish_value(channel, {"n": n})


def summary(got: list[dict[str, Any]]) -> list[Any]:
    return [
        ("gap", f["cursor"]) if f["type"] == "gap" else (f["epoch"], f["offset"], f["data"]["n"])
        for f in got
        if f["type"] in ("gap", "publication")
    ]


async def test_missed_publications_still_in_history_arrive_without_a_gap(
    node: Any, redis_proxy: TcpProxy, publisher: ChannelPublisher, alice: Account
) -> None:
    channel = "public:resync-kept"
    ws = await subscribed_ws(node, alice, channel)
    await publish(publisher, channel, range(1))
    first = (await frames(ws, 1))[-1]
    await link_down(redis_proxy, node)
    # More than HISTORY_SIZE, all still in the stream: nothing is lost, so no gap.
    await publish(publisher, channel, range(1, 13))
    await redis_proxy.start()
    got = await frames(ws, 12)
    epoch = first["epoch"]
    assert summary(got) == [(epoch, n + 1, n) for n in range(1, 13)]
    await ws.close()


async def test_a_gap_ends_right_before_the_oldest_publication_still_kept(
    node: Any,
    redis_proxy: TcpProxy,
    publisher: ChannelPublisher,
    settings: Any,
    alice: Account,
    bob: Account,
) -> None:
    channel = "public:resync-trimmed"
    ws = await subscribed_ws(node, alice, channel)
    sse = await node.get(f"/realtime/events?channels={channel}", headers=bob.headers)
    await publish(publisher, channel, range(1))
    epoch = (await frames(ws, 1))[-1]["epoch"]
    await link_down(redis_proxy, node)
    await publish(publisher, channel, range(1, 13))  # offsets 2..13
    history: History = publisher.history
    await history.redis.xtrim(history.keys(channel)[2], maxlen=3, approximate=False)
    await redis_proxy.start()

    got = await frames(ws, 3)
    assert summary(got) == [("gap", f"{epoch}:10")] + [(epoch, o, o - 1) for o in (11, 12, 13)]

    events: list[tuple[str | None, str, dict[str, Any]]] = []  # (event, id, data)
    async with asyncio.timeout(10):
        while not events or events[-1][2].get("offset") != 13:
            block = (await sse.content.readuntil(b"\n\n")).decode().strip()
            fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
            if "data" in fields:
                data = orjson.loads(fields["data"])
                events.append((fields.get("event"), fields.get("id", ""), data))
    gap = next(e for e in events if e[0] == "gap")
    assert gap[1] == f"{epoch}:10" == gap[2]["cursor"]  # a resume point, like a publication
    after = [
        data["offset"] for kind, _, data in events[events.index(gap) :] if kind == "publication"
    ]
    assert after == [11, 12, 13]
    sse.close()
    await ws.close()


async def test_after_redis_lost_its_data_the_new_epoch_is_delivered_from_its_start(
    node: Any, redis_proxy: TcpProxy, publisher: ChannelPublisher, alice: Account
) -> None:
    channel = "public:resync-flushed"
    ws = await subscribed_ws(node, alice, channel)
    await publish(publisher, channel, range(3))
    old_epoch = (await frames(ws, 3))[-1]["epoch"]
    await link_down(redis_proxy, node)
    history: History = publisher.history
    await history.redis.delete(*history.keys(channel))  # as a restart without persistence
    await publish(publisher, channel, range(3, 6))
    await redis_proxy.start()

    got = await frames(ws, 3)
    new_epoch = got[-1]["epoch"]
    assert new_epoch != old_epoch
    assert summary(got) == [("gap", f"{new_epoch}:0")] + [(new_epoch, o, o + 2) for o in (1, 2, 3)]
    await ws.close()


class Pause:
    """Holds the node's subscribing at one point (a hook around one of its steps) until
    released, so the test can cut and restore the Redis link meanwhile."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, *, after: bool):
        self.reached = asyncio.Event()
        self.released = asyncio.Event()
        step = getattr(owner, name)

        async def paused(*args: Any, **kwargs: Any) -> Any:
            if not after:
                await self.hold()
            result = await step(*args, **kwargs)
            if after:
                await self.hold()
            return result

        monkeypatch.setattr(owner, name, paused)

    async def hold(self) -> None:
        self.reached.set()
        await self.released.wait()


async def outage_while_paused(
    node: Any, proxy: TcpProxy, publisher: ChannelPublisher, channel: str, pause: Pause
) -> None:
    """Publications 1..3 while the link is down; back once the bus resubscribed."""
    await asyncio.wait_for(pause.reached.wait(), 5)
    bus = node.app[hub_key].bus
    reconnects = bus.reconnects
    await link_down(proxy, node)
    await publish(publisher, channel, range(1, 4))  # offsets 2..4: the bus misses them
    await proxy.start()

    async def resubscribed() -> bool:
        return bool(bus.reconnects > reconnects)

    await eventually(resubscribed, timeout=5)
    pause.released.set()


async def until_offset(ws: Any, offset: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while not got or got[-1].get("offset") != offset:
            got.append(await ws.receive_json())
    return got


@pytest.mark.parametrize("after", [True, False], ids=["read-before-outage", "read-after"])
async def test_a_subscription_still_subscribing_across_a_resubscription_misses_nothing(
    node: Any,
    redis_proxy: TcpProxy,
    publisher: ChannelPublisher,
    alice: Account,
    monkeypatch: pytest.MonkeyPatch,
    after: bool,
) -> None:
    """The bus resubscribes while a subscription is between its history read and going live
    (public channels add presence and announce the join there), or before its read: the
    publications the bus missed still arrive, in order and once, before the live ones."""
    channel = f"public:resync-subscribing-{int(after)}"
    await publish(publisher, channel, range(1))  # offset 1
    hub = node.app[hub_key]
    if after:  # the history is read, then held in the step that follows it (presence)
        pause = Pause(monkeypatch, hub.subscriptions.presence, "add", after=True)
    else:  # held before reading the history, after the bus confirmed the channel
        pause = Pause(monkeypatch, hub.subscriptions.history, "position", after=False)
    ws = await node.ws_connect("/realtime/ws", headers=alice.headers)
    assert (await ws.receive_json(timeout=5))["type"] == "connected"
    await ws.send_json({"type": "subscribe", "channel": channel})
    await outage_while_paused(node, redis_proxy, publisher, channel, pause)
    reply = await ws.receive_json(timeout=5)
    assert reply["type"] == "subscribed"
    epoch, read_at = reply["cursor"].split(":")
    assert int(read_at) == (1 if after else 4)
    await publish(publisher, channel, range(4, 5))  # offset 5, live
    got = await until_offset(ws, 5)
    assert summary(got) == [(epoch, n + 1, n) for n in range(int(read_at), 5)]
    await ws.close()
