"""Two server processes share nothing in memory: publications, presence and revocations
cross between them through Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.support.accounts import Account
from tests.support.frames import close_code
from tests.support.nodes import server_nodes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
async def nodes(settings: Any) -> AsyncIterator[list[str]]:
    async with server_nodes(settings, 2) as started:
        yield [node.base for node in started]


async def connect(session: aiohttp.ClientSession, base: str, account: Account) -> Any:
    ws = await session.ws_connect(f"{base}/realtime/ws", headers=account.headers)
    assert (await ws.receive_json(timeout=5))["type"] == "connected"
    return ws


async def frames_of(ws: Any, kind: str, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            frame = await ws.receive_json()
            if frame["type"] == kind:
                got.append(frame)
    return got


async def test_publications_reach_subscribers_on_both_nodes_once_in_order(
    nodes: list[str], alice: Account, bob: Account
) -> None:
    async with aiohttp.ClientSession() as session:
        subscribers = [
            await connect(session, nodes[0], alice),
            await connect(session, nodes[1], bob),
            await connect(session, nodes[1], alice),
        ]
        for ws in subscribers:
            await ws.send_json({"type": "subscribe", "channel": "public:nodes"})
            await frames_of(ws, "subscribed", 1)
        publishers = [
            await connect(session, nodes[0], alice),
            await connect(session, nodes[1], bob),
        ]
        for n in range(30):
            publisher = publishers[n % 2]
            await publisher.send_json({"type": "publish", "channel": "public:nodes", "data": n})
        for publisher in publishers:
            await frames_of(publisher, "ack", 15)
        for ws in subscribers:
            publications = await frames_of(ws, "publication", 30)
            offsets = [p["offset"] for p in publications]
            assert offsets == sorted(offsets), "in order"
            assert len(set(offsets)) == 30, "exactly once"
            assert sorted(p["data"] for p in publications) == list(range(30))
        for ws in subscribers + publishers:
            await ws.close()


async def test_presence_and_revocation_cross_nodes(
    nodes: list[str], alice: Account, bob: Account
) -> None:
    async with aiohttp.ClientSession() as session:
        on_a = await connect(session, nodes[0], alice)
        on_b = await connect(session, nodes[1], bob)
        for ws in (on_a, on_b):
            await ws.send_json({"type": "subscribe", "channel": "public:crowd"})
            await frames_of(ws, "subscribed", 1)
        await on_a.send_json({"type": "presence", "channel": "public:crowd"})
        [presence] = await frames_of(on_a, "presence", 1)
        assert {m["user_id"] for m in presence["members"]} == {alice.id, bob.id}

        # Bob logs out through node A; his socket on node B closes at once.
        async with session.post(
            f"{nodes[0]}/auth/logout",
            json={"refresh_token": bob.refresh_token},
            headers=bob.headers,
        ) as response:
            assert response.status == 204
        assert await close_code(on_b, timeout=5) == 4003  # join/leave events may come first
        await on_a.send_json({"type": "ping", "id": 1})
        assert (await frames_of(on_a, "pong", 1))[0]["id"] == 1
        await on_a.close()
