"""The Python SDK's SSE client against the real server: events, resume with Last-Event-ID
after a dropped stream, recovery-failed, and the EventSource parsing rules."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from realtime_client import RealtimeError, RecoveryFailed, WSClient, create_sse_client
from realtime_client.sse import SSEClient, SSEEvent, SSEParser

from tests.integration.test_clients_ws import ws_url
from tests.support.accounts import Account


def sse_url(client: Any) -> str:
    return str(client.make_url("/realtime/events"))


async def next_event(stream: AsyncIterator[SSEEvent], *kinds: str) -> SSEEvent:
    """The next event of one of these kinds (join/leave and others skipped)."""
    async with asyncio.timeout(10):
        async for event in stream:
            if event.event in kinds:
                return event
    raise AssertionError("the stream ended")


async def subscribed(stream: AsyncIterator[SSEEvent], channels: list[str]) -> SSEEvent:
    """`connected`, then our own `join` on every channel: the subscriptions are live. (The
    server sends `connected` before it subscribes, so a publication right after `connected`
    may precede the subscription and is, rightly, not delivered.)"""
    connected = await next_event(stream, "connected")
    client_id = connected.json()["client_id"]
    waiting = set(channels)
    while waiting:
        join = (await next_event(stream, "join")).json()
        if join["info"]["client_id"] == client_id:
            waiting.discard(join["channel"])
    return connected


def drop(sse: SSEClient) -> None:
    """Break the current stream behind the client's back."""
    assert sse._response is not None
    sse._response.close()


async def test_events_then_resume_with_last_event_id(client: Any, alice: Account) -> None:
    channel = "public:sdk-sse"
    async with WSClient(ws_url(client), token=alice.access_token) as publisher:
        sse = create_sse_client(
            sse_url(client), token=alice.access_token, channels=[channel], reconnect_delay=0.01
        )
        async with sse, contextlib.aclosing(sse.events()) as stream:
            connected = await subscribed(stream, [channel])
            assert connected.json()["user_id"] == alice.id
            first = await publisher.publish(channel, {"n": 1})
            event = await next_event(stream, "publication")
            assert event.id == first["cursor"]
            assert event.json()["data"] == {"n": 1}
            assert sse.last_event_id == first["cursor"]

            drop(sse)
            missed = [await publisher.publish(channel, {"n": n}) for n in (2, 3)]
            again = await next_event(stream, "connected")
            assert again.json()["client_id"] != connected.json()["client_id"]
            replayed = [await next_event(stream, "publication") for _ in missed]
            assert [e.json()["data"]["n"] for e in replayed] == [2, 3]
            assert [e.id for e in replayed] == [ack["cursor"] for ack in missed]
            assert sse.reconnects == 1

            live = await publisher.publish(channel, {"n": 4})  # and live ones follow
            assert (await next_event(stream, "publication")).id == live["cursor"]


async def test_resume_with_several_channels(client: Any, alice: Account) -> None:
    """Ids are `a=<cursor>,b=<cursor>`; both channels are resumed, twice in a row."""
    channels = ["public:sdk-sse-a", "public:sdk-sse-b"]
    async with WSClient(ws_url(client), token=alice.access_token) as publisher:
        sse = create_sse_client(
            sse_url(client), token=alice.access_token, channels=",".join(channels)
        )
        sse._delay = (0.01, 0.01)
        async with sse, contextlib.aclosing(sse.events()) as stream:
            await subscribed(stream, channels)
            await publisher.publish(channels[0], "a1")
            await next_event(stream, "publication")
            for round_ in range(2):
                drop(sse)
                await publisher.publish(channels[0], f"a-{round_}")
                await publisher.publish(channels[1], f"b-{round_}")
                got = [(await next_event(stream, "publication")).json() for _ in range(2)]
                assert sorted(p["data"] for p in got) == [f"a-{round_}", f"b-{round_}"]
            assert sse.reconnects == 2


async def test_recovery_failed_is_raised(client: Any, alice: Account) -> None:
    sse = create_sse_client(
        sse_url(client),
        token=alice.access_token,
        channels=["public:sdk-sse-lost"],
        last_event_id="deadbeef:5",
    )
    async with sse:
        with pytest.raises(RecoveryFailed) as failed:
            async for _ in sse.events():
                pass
    assert failed.value.channel == "public:sdk-sse-lost"
    assert failed.value.cursor


async def test_refused_streams_raise(client: Any, alice: Account) -> None:
    async with create_sse_client(
        sse_url(client), token=alice.access_token, channels=["system"]
    ) as sse:
        with pytest.raises(RealtimeError) as forbidden:
            async for _ in sse.events():
                pass
    assert (forbidden.value.code, forbidden.value.ref) == ("forbidden", 403)
    with pytest.raises(ValueError, match="channels"):
        create_sse_client(sse_url(client), token=alice.access_token)


def test_parser_follows_the_eventsource_rules() -> None:
    parser = SSEParser()
    stream = (
        b": keep-alive\r\n\r\n"
        b"retry: 2500\r\n"
        b'id: e:1\r\nevent: publication\r\ndata: {"a":\r\ndata:  1}\r\n\r\n'
        b"data: plain\n\n"
        b"id: e:2\rdata: cr only\r\r"
        b"event: empty\n\n"
        b"data: caf\xc3\xa9\r\n\r\n"
    )
    events: list[SSEEvent] = []
    for i in range(0, len(stream), 3):  # lines and \r\n pairs split across chunks
        events.extend(parser.feed(stream[i : i + 3]))
    assert events == [
        SSEEvent("publication", '{"a":\n 1}', "e:1", 2500),
        SSEEvent("message", "plain", None, 2500),
        SSEEvent("message", "cr only", "e:2", 2500),
        SSEEvent("message", "café", None, 2500),
    ]
    assert events[0].json() == {"a": 1}
    assert parser.comments == 1


def test_client_keeps_a_valid_cursor_per_channel() -> None:
    """What the client sends as Last-Event-ID is rebuilt from every id it saw, so ids the
    server gets wrong (a bare cursor with several channels, `b=:0`) do not break resuming."""
    sse = create_sse_client("http://h/realtime/events", channels=["public:a", "public:b"])
    sse._remember(SSEEvent("publication", '{"channel": "public:b"}', "e2:7"))
    sse._remember(SSEEvent("publication", '{"channel": "public:a"}', "public:a=e1:4,public:b=:0"))
    assert sse.last_event_id == "public:a=e1:4,public:b=:0"
    assert sse.resume_id == "public:a=e1:4,public:b=e2:7"
    one = create_sse_client("http://h/realtime/events", channels="public:a", last_event_id="e:1")
    assert one.resume_id == "e:1"


async def test_server_ids_name_every_channel_during_replay(client: Any, alice: Account) -> None:
    a, b = "public:sdk-ids-a", "public:sdk-ids-b"
    async with WSClient(ws_url(client), token=alice.access_token) as publisher:
        since = {c: (await publisher.subscribe(c))["cursor"] for c in (a, b)}
        await publisher.publish(a, 1)
    last_event_id = ",".join(f"{c}={cursor}" for c, cursor in since.items())
    response = await client.get(
        f"/realtime/events?channels={a},{b}",
        headers={**alice.headers, "Last-Event-ID": last_event_id},
    )
    parser = SSEParser()
    async with asyncio.timeout(5):
        async for chunk in response.content.iter_any():
            replayed = [e for e in parser.feed(chunk) if e.event == "publication"]
            if replayed:
                break
    response.close()
    assert replayed[0].id is not None
    assert "=" in replayed[0].id, f"id {replayed[0].id!r} does not say which channel"
