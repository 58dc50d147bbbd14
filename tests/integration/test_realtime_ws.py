"""WebSocket /realtime/ws: connect, ping, subscribe, publish, recovery, direct messages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.accounts import Account
from tests.support.frames import close_code, next_frame


async def connect(client: Any, account: Account, **kwargs: Any) -> Any:
    ws = await client.ws_connect("/realtime/ws", headers=account.headers, **kwargs)
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "connected"
    assert hello["user_id"] == account.id
    return ws


async def next_of(ws: Any, kind: str, timeout: float = 5) -> dict[str, Any]:
    """The next frame of this type (others are kept for later readers)."""
    return await next_frame(ws, (kind,), timeout)


async def test_ping_pong(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    await ws.send_json({"type": "ping", "id": 7, "data": {"x": 1}})
    assert await ws.receive_json(timeout=5) == {"type": "pong", "data": {"x": 1}, "id": 7}
    await ws.close()


async def test_publish_reaches_every_subscriber_with_offsets(
    client: Any, alice: Account, bob: Account
) -> None:
    a = await connect(client, alice)
    b = await connect(client, bob)
    for ws in (a, b):
        await ws.send_json({"type": "subscribe", "channel": "public:t1", "id": 1})
        subscribed = await next_of(ws, "subscribed")
        assert subscribed["recovered"] is True
        assert subscribed["publications"] == []
    await a.send_json({"type": "publish", "channel": "public:t1", "data": {"n": 1}, "id": "p1"})
    ack = await next_of(a, "ack")
    assert ack["id"] == "p1"
    for ws in (a, b):
        publication = await next_of(ws, "publication")
        assert publication["data"] == {"n": 1}
        assert publication["offset"] == ack["offset"]
        assert publication["cursor"] == ack["cursor"]
        assert publication["from"]["user_id"] == alice.id
    await a.close()
    await b.close()


async def test_recovery_replays_missed_publications_in_order(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    await ws.send_json({"type": "subscribe", "channel": "public:rec"})
    first = await next_of(ws, "subscribed")
    await ws.send_json({"type": "unsubscribe", "channel": "public:rec"})
    await next_of(ws, "unsubscribed")
    for n in range(3):
        await ws.send_json({"type": "publish", "channel": "public:rec", "data": n})
        await next_of(ws, "ack")
    await ws.send_json({"type": "subscribe", "channel": "public:rec", "since": first["cursor"]})
    again = await next_of(ws, "subscribed")
    assert again["recovered"] is True
    assert [p["data"] for p in again["publications"]] == [0, 1, 2]
    await ws.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ("[1,2]", "bad_message"),
        ('{"type": "nope"}', "unknown_type"),
        ('{"type": "subscribe"}', "invalid"),
        ('{"type": "subscribe", "channel": "../../etc"}', "bad_channel"),
        ('{"type": "subscribe", "channel": "user:1"}', "forbidden"),
        ('{"type": "publish", "channel": "system", "data": 1}', "forbidden"),
        ('{"type": "unsubscribe", "channel": "public:none"}', "not_subscribed"),
    ],
)
async def test_bad_frames_get_errors_and_the_connection_stays(
    client: Any, alice: Account, frame: str, code: str
) -> None:
    ws = await connect(client, alice)
    await ws.send_str(frame)
    error = await next_of(ws, "error")
    assert error["code"] == code
    await ws.send_json({"type": "ping", "id": 1})
    assert (await next_of(ws, "pong"))["id"] == 1
    await ws.close()


async def test_unauthenticated_and_foreign_origin_are_refused(client: Any, alice: Account) -> None:
    response = await client.get(
        "/realtime/ws", headers={"Upgrade": "websocket", "Connection": "Upgrade"}
    )
    assert response.status == 401
    response = await client.get(
        "/realtime/ws", headers={**alice.headers, "Origin": "https://evil.example"}
    )
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "origin_not_allowed"


async def test_revoked_session_closes_the_socket(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    response = await client.post(
        "/auth/logout", json={"refresh_token": alice.refresh_token}, headers=alice.headers
    )
    assert response.status == 204
    assert await close_code(ws, timeout=5) == 4003
