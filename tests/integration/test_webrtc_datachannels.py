"""Data channels with the server peer: `echo`, and channels bridged to hub channels (what
the peer sends is published, the channel's publications come down the data channel)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from server.kernel.settings import Settings
from tests.integration.test_realtime_sse import read_events
from tests.support.accounts import Account
from tests.support.rtc import client_peer, wait_open
from tests.support.rtc_media import Signaling, create_room, rtc_app
from tests.support.waiting import eventually


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> web.Application:
    return rtc_app(settings, tmp_path / "uploads")


def unique_channel() -> str:
    return f"public:rtcbridge-{uuid.uuid4().hex[:8]}"


class Inbox:
    """Every message a data channel receives, in order, with a way to wait for more."""

    def __init__(self, channel: Any) -> None:
        self.messages: list[Any] = []
        self.closed = asyncio.Event()
        self._changed = asyncio.Event()
        channel.on("message", self._on_message)
        channel.on("close", self.closed.set)

    def _on_message(self, message: Any) -> None:
        self.messages.append(message)
        self._changed.set()

    async def wait_for(self, count: int, timeout: float = 10) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.messages

    def publications(self) -> list[dict[str, Any]]:
        frames = [orjson.loads(m) for m in self.messages if isinstance(m, str)]
        return [f for f in frames if f.get("type") == "publication"]


async def connected_peer(client: Any, account: Account, *labels: str) -> tuple[Any, Any, list[Any]]:
    """A client peer with data channels `labels`, answered by the server over signaling."""
    signaling = await Signaling.open(client, account)
    room = await create_room(client, account, media=False)
    await signaling.join(room["id"])
    pc = client_peer()
    channels = [pc.createDataChannel(label) for label in labels]
    await signaling.call_server(pc)
    return pc, signaling, channels


async def test_echo_returns_100_text_and_100_binary_messages_in_order(
    client: Any, alice: Account
) -> None:
    pc, signaling, [channel] = await connected_peer(client, alice, "echo")
    inbox = Inbox(channel)
    await wait_open(channel)
    sent: list[str | bytes] = []
    for n in range(100):
        sent.append(f"text message {n}")
        sent.append(n.to_bytes(2, "big") * (n + 1))
    for message in sent:
        channel.send(message)
    assert await inbox.wait_for(len(sent)) == sent
    await pc.close()
    await signaling.close()


async def test_bridge_publishes_what_the_peer_sends_to_ws_and_sse_subscribers(
    client: Any, alice: Account, bob: Account
) -> None:
    name = unique_channel()
    ws = await client.ws_connect("/realtime/ws", headers=bob.headers)
    assert (await ws.receive_json(timeout=5))["type"] == "connected"
    await ws.send_json({"type": "subscribe", "channel": name})
    assert (await ws.receive_json(timeout=5))["type"] == "subscribed"
    sse = await client.get(f"/realtime/events?channels={name}", headers=bob.headers)
    assert sse.status == 200
    [connected] = await read_events(sse, 1)
    assert connected["event"] == "connected"

    pc, signaling, [channel] = await connected_peer(client, alice, name)
    await wait_open(channel)
    channel.send(orjson.dumps({"n": 1}).decode())
    channel.send("plain text")

    datas = []
    async with asyncio.timeout(10):
        while len(datas) < 2:
            frame = await ws.receive_json()
            if frame["type"] == "publication":
                assert frame["channel"] == name, frame
                datas.append(frame["data"])
    assert datas == [{"n": 1}, "plain text"]
    events = await read_events(sse, 2)
    assert [e["event"] for e in events] == ["publication", "publication"]
    assert [orjson.loads(e["data"])["data"] for e in events] == [{"n": 1}, "plain text"]
    assert orjson.loads(events[0]["data"])["from"]["user_id"] == alice.id
    sse.close()
    await ws.close()
    await pc.close()
    await signaling.close()


async def test_bridge_delivers_websocket_publications_down_the_data_channel(
    client: Any, alice: Account, bob: Account
) -> None:
    name = unique_channel()
    pc, signaling, [channel] = await connected_peer(client, alice, name)
    inbox = Inbox(channel)
    await wait_open(channel)
    ws = await client.ws_connect("/realtime/ws", headers=bob.headers)
    assert (await ws.receive_json(timeout=5))["type"] == "connected"

    async def published() -> list[dict[str, Any]]:
        """Publish until the bridge (subscribing as the channel opens) passes one on."""
        await ws.send_json({"type": "publish", "channel": name, "data": {"hello": "peer"}})
        assert (await ws.receive_json(timeout=5))["type"] == "ack"
        await asyncio.sleep(0.1)
        return inbox.publications()

    async with asyncio.timeout(10):
        while not (publications := await published()):
            pass
    assert publications[0]["channel"] == name
    assert publications[0]["data"] == {"hello": "peer"}
    assert publications[0]["from"]["user_id"] == bob.id
    await ws.close()
    await pc.close()
    await signaling.close()


@pytest.mark.parametrize("label", ["system", "user:{other}", "admin:ops", "nonsense:x"])
async def test_bridge_to_a_forbidden_channel_gets_an_error_and_is_closed(
    client: Any, alice: Account, bob: Account, label: str
) -> None:
    label = label.format(other=bob.id)
    pc, signaling, [forbidden, echo] = await connected_peer(client, alice, label, "echo")
    inbox = Inbox(forbidden)
    await asyncio.wait_for(inbox.closed.wait(), 10)
    assert forbidden.readyState == "closed"
    [message] = inbox.messages
    error = orjson.loads(message)
    assert error["type"] == "error"
    assert error["code"] in ("forbidden", "unknown_namespace"), error
    # the peer itself is fine: its other channel still works
    await wait_open(echo)
    got = Inbox(echo)
    echo.send("still here")
    assert await got.wait_for(1) == ["still here"]
    await pc.close()
    await signaling.close()


async def presence_of(client: Any, account: Account, name: str) -> list[dict[str, Any]]:
    response = await client.get(f"/realtime/channels/{name}/presence", headers=account.headers)
    assert response.status == 200, await response.text()
    return list((await response.json())["members"])


async def test_closing_a_bridged_data_channel_ends_its_subscription(
    client: Any, alice: Account
) -> None:
    name = unique_channel()
    pc, signaling, [channel, echo] = await connected_peer(client, alice, name, "echo")
    await wait_open(channel)

    async def present() -> list[dict[str, Any]]:
        return await presence_of(client, alice, name)

    [member] = await eventually(present)
    assert member["user_id"] == alice.id
    channel.close()

    async def gone() -> bool:
        return await presence_of(client, alice, name) == []

    await eventually(gone)
    # the peer and its other channels carry on
    await wait_open(echo)
    got = Inbox(echo)
    echo.send("after the bridge")
    assert await got.wait_for(1) == ["after the bridge"]
    await pc.close()
    await signaling.close()
