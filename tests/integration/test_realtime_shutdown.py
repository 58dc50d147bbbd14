"""Shutting a node down tells its clients to go away: WebSockets close with 1001 and event
streams end with `event: close` {code: 1001}, so clients reconnect elsewhere and recover."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
from aiohttp import WSMsgType

from server.app import create_app
from tests.integration.test_realtime_channels import sse_events, subscribe, unique
from tests.support.accounts import Account


async def test_closing_the_app_closes_websockets_with_1001_and_ends_streams(
    aiohttp_client: Any, settings: Any, alice: Account, bob: Account
) -> None:
    client = await aiohttp_client(create_app(settings))
    # our own session: TestClient.close() would first close the sockets it opened itself
    async with aiohttp.ClientSession() as session:
        sockets = []
        for account in (alice, bob):
            ws = await session.ws_connect(client.make_url("/realtime/ws"), headers=account.headers)
            assert (await ws.receive_json(timeout=5))["type"] == "connected"
            await subscribe(ws, unique())
            sockets.append(ws)
        stream = await session.get(
            client.make_url("/realtime/events"),
            params={"channels": unique()},
            headers=alice.headers,
        )
        await sse_events(stream, 1)

        closing = asyncio.ensure_future(client.close())
        for ws in sockets:
            message = await ws.receive(timeout=10)
            while message.type is WSMsgType.TEXT:  # e.g. our own join event
                message = await ws.receive(timeout=10)
            assert message.type is WSMsgType.CLOSE
            assert message.data == 1001
            assert message.extra == "server shutting down"
        [event] = await sse_events(stream, 1, timeout=10)
        assert event["event"] == "close"
        assert orjson.loads(event["data"])["code"] == 1001
        await asyncio.wait_for(closing, 15)
        for ws in sockets:
            await ws.close()
        stream.close()


async def test_a_client_without_connections_shuts_down_at_once(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    client = await aiohttp_client(create_app(settings))
    ws = await client.ws_connect("/realtime/ws", headers=alice.headers)
    await ws.receive_json(timeout=5)
    await ws.close()
    await asyncio.wait_for(client.close(), 10)
