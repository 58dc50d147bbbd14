"""GET /realtime/events: EventSource streams with ids, resume with Last-Event-ID."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from tests.support.accounts import Account


async def read_events(
    response: Any,
    count: int,
    timeout: float = 5,
    skip: tuple[str, ...] = ("join", "leave", "subscribed"),
) -> list[dict[str, Any]]:
    """Parse `count` SSE events (comments and presence events skipped)."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with asyncio.timeout(timeout):
        while len(events) < count:
            line = (await response.content.readline()).decode().rstrip("\r\n")
            if not line:
                if current and current.get("event") not in skip:
                    events.append(current)
                current = {}
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(": ")
            current[field] = value
    return events


async def publish(client: Any, account: Account, channel: str, data: Any) -> dict[str, Any]:
    ws = await client.ws_connect("/realtime/ws", headers=account.headers)
    await ws.receive_json()
    await ws.send_json({"type": "publish", "channel": channel, "data": data})
    ack = await ws.receive_json(timeout=5)
    await ws.close()
    assert ack["type"] == "ack", ack
    return ack


async def test_events_carry_cursor_ids_and_resume(client: Any, alice: Account) -> None:
    response = await client.get("/realtime/events?channels=public:sse1", headers=alice.headers)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    # publish only once the channel is live (`subscribed`): earlier, it may precede the
    # subscription and be (rightly) not delivered
    connected, subscribed = await read_events(response, 2, skip=("join", "leave"))
    assert (connected["event"], subscribed["event"]) == ("connected", "subscribed")
    ack = await publish(client, alice, "public:sse1", {"n": 1})
    [event] = await read_events(response, 1)
    assert event["event"] == "publication"
    assert event["id"] == ack["cursor"]
    assert orjson.loads(event["data"])["data"] == {"n": 1}
    response.close()

    await publish(client, alice, "public:sse1", {"n": 2})
    await publish(client, alice, "public:sse1", {"n": 3})
    resumed = await client.get(
        "/realtime/events?channels=public:sse1",
        headers={**alice.headers, "Last-Event-ID": event["id"]},
    )
    events = await read_events(resumed, 3)
    assert [e["event"] for e in events] == ["connected", "publication", "publication"]
    assert [orjson.loads(e["data"])["data"]["n"] for e in events[1:]] == [2, 3]
    resumed.close()


async def test_unrecoverable_position_ends_with_recovery_failed(
    client: Any, alice: Account
) -> None:
    response = await client.get(
        "/realtime/events?channels=public:sse2",
        headers={**alice.headers, "Last-Event-ID": "deadbeef:5"},
    )
    events = await read_events(response, 2)
    assert events[1]["event"] == "recovery-failed"
    response.close()


async def test_bad_requests_are_refused_before_streaming(client: Any, alice: Account) -> None:
    assert (await client.get("/realtime/events?channels=public:x")).status == 401
    bad = await client.get("/realtime/events?channels=", headers=alice.headers)
    assert bad.status == 400
    forbidden = await client.get("/realtime/events?channels=system", headers=alice.headers)
    assert forbidden.status == 403
