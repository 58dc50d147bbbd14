"""The real nginx with deploy/nginx.conf in front of two server nodes: REST, WebSocket, SSE,
a resumable upload begun on one node and finished on the other, signaling between room
members on different nodes, and one node killed mid-traffic while its clients reconnect
through nginx to the survivor and recover every accepted publication."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.test_two_nodes import frames_of
from tests.integration.test_uploads_ws import Sender, begin, expect
from tests.support.accounts import Account
from tests.support.nginx import nginx
from tests.support.nodes import Node, server_nodes
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
async def proxied(settings: Any, tmp_path: Path) -> AsyncIterator[tuple[str, list[Node]]]:
    uploads = tmp_path / "uploads"  # one UPLOAD_DIR for both nodes, as docs/OPERATIONS.md says
    async with (
        server_nodes(
            settings,
            2,
            UPLOAD_DIR=str(uploads),
            TRUSTED_PROXIES="127.0.0.1",  # nginx connects from there
            LOG_LEVEL="INFO",
            LOG_FORMAT="json",
        ) as nodes,
        nginx(tmp_path / "nginx", [node.port for node in nodes]) as base,
    ):
        yield base, nodes


async def connect_to(
    session: aiohttp.ClientSession, base: str, account: Account, node: str | None = None
) -> tuple[Any, str]:
    """A WebSocket through nginx; with `node`, reconnect until nginx picks another node than
    it (round robin: the next try)."""
    for _ in range(10):
        ws = await session.ws_connect(f"{base}/realtime/ws", headers=account.headers)
        connected = await ws.receive_json(timeout=5)
        assert connected["type"] == "connected"
        if node is None or connected["node"] != node:
            return ws, connected["node"]
        await ws.close()
    raise AssertionError("nginx never chose the other node")


async def test_rest_websocket_and_sse_through_nginx(
    proxied: tuple[str, list[Node]], alice: Account, admin: Account
) -> None:
    base, _ = proxied
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/users/me", headers=alice.headers) as response:
            assert response.status == 200
            assert (await response.json())["id"] == alice.id
            assert "X-Request-ID" in response.headers
        first, node = await connect_to(session, base, alice)
        second, _ = await connect_to(session, base, alice, node=node)
        for ws in (first, second):
            await ws.send_json({"type": "subscribe", "channel": "public:proxied"})
            await frames_of(ws, "subscribed", 1)
        events = await session.get(
            f"{base}/realtime/events?channels=public:proxied", headers=alice.headers
        )
        assert events.status == 200
        assert events.headers["Content-Type"].startswith("text/event-stream")
        async with asyncio.timeout(5):  # the first events arrive unbuffered
            while b"event: subscribed" not in await events.content.readline():
                pass
        async with session.post(
            f"{base}/realtime/broadcast",
            json={"channel": "public:proxied", "data": "through nginx"},
            headers=admin.headers,
        ) as response:
            assert response.status == 202, await response.text()
        for ws in (first, second):
            [publication] = await frames_of(ws, "publication", 1)
            assert publication["data"] == "through nginx"
        async with asyncio.timeout(5):
            while b"through nginx" not in await events.content.readline():
                pass
        events.close()
        await first.close()
        await second.close()


async def test_the_server_sees_the_clients_address_and_not_a_forged_one(
    proxied: tuple[str, list[Node]], alice: Account
) -> None:
    """The client connects from 127.0.0.2 and claims 203.0.113.66: nginx replaces the
    header with 127.0.0.2, which the node (trusting nginx at 127.0.0.1) logs."""
    base, nodes = proxied
    path = f"/users/me?probe={uuid.uuid4().hex}"
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        headers = {**alice.headers, "X-Forwarded-For": "203.0.113.66"}
        async with session.get(f"{base}{path}", headers=headers) as response:
            assert response.status == 200

    def logged() -> list[dict[str, Any]]:
        lines = [line for node in nodes for _, line in node.lines if path.split("?")[0] in line]
        return [entry for entry in map(json.loads, lines) if entry.get("status") == 200]

    async def seen() -> list[dict[str, Any]]:
        return logged()

    [entry] = await eventually(seen, timeout=5)
    assert entry["remote"] == "127.0.0.2"


async def test_an_upload_begun_on_one_node_is_finished_on_the_other(
    proxied: tuple[str, list[Node]], alice: Account
) -> None:
    base, _ = proxied
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = hashlib.sha256(data).hexdigest()
    async with aiohttp.ClientSession() as session:
        ws, node = await connect_to(session, base, alice)
        ready = await begin(ws, name="big.bin", mime="application/octet-stream", size=len(data))
        sender = Sender(ws, ready)
        half = len(data) // 2
        await sender.send_all(data, 0, half)
        while sender.acked < half:
            await sender._take_ack()
        await ws.close()

        other, other_node = await connect_to(session, base, alice, node=node)
        assert other_node != node
        resumed = await begin(
            other,
            name="big.bin",
            mime="application/octet-stream",
            size=len(data),
            upload_id=ready["upload_id"],
        )
        assert resumed["offset"] == half
        await Sender(other, resumed).send_all(data, half)
        await other.send_json({"type": "file.end", "upload_id": ready["upload_id"]})
        done = await expect(other, "file.done", timeout=30)
        assert done["sha256"] == digest
        async with session.get(f"{base}{done['url']}", headers=alice.headers) as response:
            assert response.status == 200
            assert hashlib.sha256(await response.read()).hexdigest() == digest
        await other.close()


async def test_a_large_http_upload_streams_through_nginx(
    proxied: tuple[str, list[Node]], alice: Account
) -> None:
    """Larger than nginx's default body limit and than MAX_REQUEST_BODY: the node, not nginx,
    decides (UPLOAD_MAX_SIZE, the quota)."""
    base, _ = proxied
    data = os.urandom(20 * 1024 * 1024)
    body = aiohttp.FormData(default_to_multipart=True)
    body.add_field(
        "file", io.BytesIO(data), filename="big.bin", content_type="application/octet-stream"
    )
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{base}/realtime/binary/upload", data=body, headers=alice.headers
        ) as response:
            assert response.status == 201, await response.text()
            out = await response.json()
        assert out["size"] == len(data)
        assert out["sha256"] == hashlib.sha256(data).hexdigest()


async def test_signaling_between_members_on_different_nodes(
    proxied: tuple[str, list[Node]], alice: Account, bob: Account
) -> None:
    base, _ = proxied
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{base}/realtime/webrtc/rooms", json={"name": "proxied"}, headers=alice.headers
        ) as response:
            assert response.status == 201, await response.text()
            room = (await response.json())["id"]
        caller, node = await connect_to(session, base, alice)
        callee, _ = await connect_to(session, base, bob, node=node)
        await callee.send_json({"type": "join", "room": room})
        await frames_of(callee, "joined", 1)
        await caller.send_json({"type": "join", "room": room})
        [joined] = await frames_of(caller, "joined", 1)
        [other] = [p for p in joined["participants"] if p["user_id"] == bob.id]
        await caller.send_json({"type": "offer", "to": other["peer_id"], "sdp": "v=0 proxied"})
        [offer] = await frames_of(callee, "offer", 1)
        assert (offer["sdp"], offer["from_user"], offer["room"]) == ("v=0 proxied", alice.id, room)
        await caller.close()
        await callee.close()


class Subscriber:
    """A client through nginx that reconnects and recovers from its last cursor."""

    def __init__(self, session: aiohttp.ClientSession, base: str, account: Account) -> None:
        self.session, self.base, self.account = session, base, account
        self.cursor: str | None = None
        self.data: list[int] = []
        self.nodes: list[str] = []
        self.live = asyncio.Event()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError, TimeoutError):
                await self._once()
            self.live.clear()
            await asyncio.sleep(0.2)

    async def _once(self) -> None:
        url = f"{self.base}/realtime/ws"
        async with self.session.ws_connect(url, headers=self.account.headers) as ws:
            self.nodes.append((await ws.receive_json(timeout=5))["node"])
            await ws.send_json(
                {"type": "subscribe", "channel": "public:kill", "since": self.cursor}
            )
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    return
                frame = message.json()
                if frame["type"] == "subscribed":
                    assert frame["recovered"] or self.cursor is None, frame
                    self.data += [p["data"] for p in frame.get("publications", [])]
                    self.cursor = frame["cursor"]
                    self.live.set()
                elif frame["type"] == "publication":
                    self.data.append(frame["data"])
                    self.cursor = frame["cursor"]


async def test_a_killed_nodes_clients_recover_through_nginx_on_the_survivor(
    proxied: tuple[str, list[Node]], alice: Account, admin: Account
) -> None:
    base, nodes = proxied
    accepted: list[int] = []
    async with aiohttp.ClientSession() as session:
        subscribers = [Subscriber(session, base, alice) for _ in range(8)]
        tasks = [asyncio.create_task(s.run()) for s in subscribers]
        try:
            await asyncio.wait_for(asyncio.gather(*(s.live.wait() for s in subscribers)), 15)
            assert len({s.nodes[0] for s in subscribers}) == 2, "clients on both nodes"
            for n in range(60):
                if n == 20:
                    nodes[0].kill()
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.post(
                        f"{base}/realtime/broadcast",
                        json={"channel": "public:kill", "data": n},
                        headers=admin.headers,
                    ) as response:
                        if response.status == 202:
                            accepted.append(n)
                        else:
                            assert response.status in (502, 503), await response.text()
                await asyncio.sleep(0.03)
            assert len(accepted) >= 50, accepted

            async def all_recovered() -> bool:
                # A publication whose answer nginx lost with the node may arrive too.
                return all(set(accepted) <= set(s.data) for s in subscribers)

            await eventually(all_recovered, timeout=20, interval=0.3)
            for subscriber in subscribers:
                assert subscriber.data == sorted(set(subscriber.data)), "exactly once, in order"
            assert any(len(s.nodes) > 1 for s in subscribers), "someone had to reconnect"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
