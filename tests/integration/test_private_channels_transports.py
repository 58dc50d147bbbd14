"""Private channels on the other transports: event streams, REST presence, bridged WebRTC
data channels, and a removal reaching a subscriber connected to another server node."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from server.app import create_app
from server.kernel.settings import Settings
from tests.integration.test_private_channels import add_member, create_channel, members_url
from tests.integration.test_realtime_channels import publish, subscribe
from tests.integration.test_realtime_sse import read_events
from tests.integration.test_realtime_ws import connect, next_of
from tests.integration.test_webrtc_datachannels import Inbox, connected_peer
from tests.support.accounts import Account, create_account, log_in
from tests.support.rtc import wait_open
from tests.support.rtc_media import rtc_app
from tests.support.uploads import form, post


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> web.Application:
    return rtc_app(settings, tmp_path / "uploads")


async def test_event_streams_need_membership_and_end_on_removal(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = await create_channel(client, alice)
    response = await client.get(f"/realtime/events?channels={channel}", headers=bob.headers)
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"

    await add_member(client, alice, channel, bob.id)
    stream = await client.get(f"/realtime/events?channels={channel}", headers=bob.headers)
    assert stream.status == 200
    [connected] = await read_events(stream, 1)
    assert connected["event"] == "connected"
    owner = await connect(client, alice)
    await subscribe(owner, channel)  # members publish where they are subscribed
    await publish(owner, channel, {"to": "members"})
    [publication] = await read_events(stream, 1)
    assert orjson.loads(publication["data"])["data"] == {"to": "members"}

    response = await client.delete(members_url(channel, bob.id), headers=alice.headers)
    assert response.status == 204
    unsubscribed, closed = await read_events(stream, 2)
    assert unsubscribed["event"] == "unsubscribed"
    assert orjson.loads(unsubscribed["data"]) == {
        "type": "unsubscribed",
        "channel": channel,
        "code": "removed",
        "reason": "removed from the channel's members",
    }
    assert closed["event"] == "close" and orjson.loads(closed["data"])["code"] == 1000
    stream.close()
    await owner.close()


async def test_rest_presence_needs_membership(client: Any, alice: Account, bob: Account) -> None:
    channel = await create_channel(client, alice)
    url = f"/realtime/channels/{channel}/presence"
    response = await client.get(url, headers=bob.headers)
    assert response.status == 403
    await add_member(client, alice, channel, bob.id)
    response = await client.get(url, headers=bob.headers)
    assert response.status == 200, await response.text()


async def test_a_removal_ends_a_subscription_held_on_another_node(
    aiohttp_client: Any, client: Any, settings: Settings, alice: Account, bob: Account
) -> None:
    other_node = await aiohttp_client(create_app(settings))  # the same Redis and database
    channel = await create_channel(client, alice)
    await add_member(client, alice, channel, bob.id)
    ws = await connect(other_node, bob)
    await subscribe(ws, channel)
    response = await client.delete(members_url(channel, bob.id), headers=alice.headers)
    assert response.status == 204
    frame = await next_of(ws, "unsubscribed")
    assert (frame["channel"], frame["code"]) == (channel, "removed")
    # and the other node no longer lets bob back in (its cached answer is gone too)
    await ws.send_json({"type": "subscribe", "channel": channel})
    assert (await next_of(ws, "error"))["code"] == "forbidden"
    await ws.close()


async def test_a_bridged_data_channel_needs_membership_and_closes_on_removal(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = await create_channel(client, alice)
    pc, signaling, [refused] = await connected_peer(client, bob, channel)
    inbox = Inbox(refused)
    await asyncio.wait_for(inbox.closed.wait(), 10)
    assert orjson.loads(inbox.messages[0])["code"] == "forbidden"
    await pc.close()
    await signaling.close()

    await add_member(client, alice, channel, bob.id)
    pc, signaling, [bridged] = await connected_peer(client, bob, channel)
    inbox = Inbox(bridged)
    await wait_open(bridged)
    owner = await connect(client, alice)
    await subscribe(owner, channel)

    async def delivered() -> bool:
        await publish(owner, channel, "hello bridge")
        await asyncio.sleep(0.1)
        return bool(inbox.publications())

    async with asyncio.timeout(10):
        while not await delivered():
            pass
    bridged.send("from the peer")
    assert (await next_of(owner, "publication"))["data"] in ("hello bridge", "from the peer")
    response = await client.delete(members_url(channel, bob.id), headers=alice.headers)
    assert response.status == 204
    await asyncio.wait_for(inbox.closed.wait(), 10)
    frames = [orjson.loads(m) for m in inbox.messages]
    assert {"type": "unsubscribed", "channel": channel, "code": "removed"}.items() <= (
        frames[-1].items()
    )
    await owner.close()
    await pc.close()
    await signaling.close()


async def test_files_on_a_private_channel_are_for_its_members(
    client: Any, db: Any, auth_service: Any, alice: Account, bob: Account
) -> None:
    stranger = await log_in(client, await create_account(db, auth_service))
    channel = await create_channel(client, alice)
    await add_member(client, alice, channel, bob.id)
    refused = await post(client, stranger, form(b"not yours", channel=channel))
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "forbidden"
    response = await post(client, bob, form(b"for the members", channel=channel))
    assert response.status == 201, await response.text()
    url = (await response.json())["url"]
    download = await client.get(url, headers=alice.headers)  # a member, not its owner
    assert download.status == 200
    assert await download.read() == b"for the members"
    assert (await client.get(url, headers=stranger.headers)).status == 404
