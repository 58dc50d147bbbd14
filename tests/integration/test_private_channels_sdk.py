"""The Python SDK's side of channels an application controls: PrivateChannels (the member
REST calls), a removal seen through WSClient.messages() and by the SSE client (which then
follows its other channels), and subscription tokens on
WSClient.subscribe(token=) and create_sse_client(subscription_tokens=)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import pytest
from realtime_client import PrivateChannels, RealtimeError, WSClient, create_sse_client

from server.auth.subscription_tokens import issue
from tests.integration.test_clients_ws import collect, ws_url
from tests.integration.test_private_channels import add_member, create_channel, members_url
from tests.integration.test_realtime_channels import publish, subscribe, unique
from tests.integration.test_realtime_ws import connect
from tests.integration.test_subscription_tokens import KEY, doc_channel, tokens_client
from tests.support.accounts import Account

__all__ = ["tokens_client"]  # the fixture, shared


async def test_private_channels_through_the_sdk(client: Any, alice: Account, bob: Account) -> None:
    name = f"sdk-{uuid.uuid4().hex[:8]}"
    base = str(client.make_url("/"))
    async with (
        PrivateChannels(base, token=alice.access_token) as owner,
        PrivateChannels(ws_url(client), token=bob.access_token) as member,
    ):
        created = await owner.create(name)
        channel = created["channel"]
        assert channel == f"private:{name}"
        with pytest.raises(RealtimeError) as refused:
            await owner.create(name)
        assert (refused.value.code, refused.value.ref) == ("channel_exists", 409)
        with pytest.raises(RealtimeError) as hidden:
            await member.members(name)
        assert hidden.value.code == "unknown_channel"
        added = await owner.add_member(name, bob.id)
        assert (added["user_id"], added["role"]) == (bob.id, "member")
        listing = await member.members(name)
        assert [m["user_id"] for m in listing["members"]] == [alice.id, bob.id]
        assert channel in [c["channel"] for c in await member.list()]
        with pytest.raises(RealtimeError) as not_owner:
            await member.remove_member(name, alice.id)
        assert not_owner.value.code == "not_owner"

        async with WSClient(ws_url(client), token=bob.access_token) as ws:
            await ws.subscribe(channel)
            await owner.remove_member(name, bob.id)
            [frame] = await collect(ws, 1, lambda m: isinstance(m, dict) and m["type"] != "join")
            assert frame == {
                "type": "unsubscribed",
                "channel": channel,
                "code": "removed",
                "reason": "removed from the channel's members",
            }
            assert channel not in ws.channels
        await owner.delete(name)
        assert channel not in [c["channel"] for c in await owner.list()]


async def test_subscription_tokens_through_the_sdk(tokens_client: Any, alice: Account) -> None:
    channel = doc_channel()
    asked = 0

    async def fresh_token() -> str:
        nonlocal asked
        asked += 1
        return issue(KEY, channel=channel, user_id=alice.id, expires_at=int(time.time()) + 60)

    async with WSClient(ws_url(tokens_client), token=alice.access_token) as ws:
        with pytest.raises(RealtimeError) as refused:
            await ws.subscribe(channel)
        assert refused.value.code == "forbidden"
        reply = await ws.subscribe(channel, token=fresh_token)
        assert reply["type"] == "subscribed" and asked == 1

    sse = create_sse_client(
        str(tokens_client.make_url("/realtime/events")),
        token=alice.access_token,
        channels=[channel],
        subscription_tokens=[fresh_token],
    )
    async with sse, asyncio.timeout(10), contextlib.aclosing(sse.events()) as events:  # type: ignore[type-var]
        async for event in events:
            if event.event == "subscribed":
                break
    assert asked == 2


async def test_the_sse_client_stops_following_a_channel_it_was_removed_from(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = await create_channel(client, alice)
    await add_member(client, alice, channel, bob.id)
    news = unique()
    sse = create_sse_client(
        str(client.make_url("/realtime/events")),
        token=bob.access_token,
        channels=[channel, news],
        reconnect_delay=0.05,
    )
    publisher = await connect(client, alice)
    await subscribe(publisher, news)
    async with sse, asyncio.timeout(10), contextlib.aclosing(sse.events()) as events:  # type: ignore[type-var]
        async for event in events:
            if event.event == "connected" and sse.reconnects == 0:
                await client.delete(members_url(channel, bob.id), headers=alice.headers)
            elif event.event == "unsubscribed":
                assert sse.channels == [news]
                assert sse._response is not None
                sse._response.close()  # the stream drops: the client reconnects
            elif event.event == "connected":  # reconnected, to the news only (not a 403)
                await publish(publisher, news, {"still": "following"})
            elif event.event == "publication":
                assert event.json()["data"] == {"still": "following"}
                break
    assert sse.reconnects == 1
    await publisher.close()
