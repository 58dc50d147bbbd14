"""GET /realtime/events beyond the basics: several channels with composite event ids and
resuming from them, `?since=`, keep-alive comments, and requests refused before streaming."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from server.hub.hub import hub_key
from tests.integration.test_realtime_channels import custom_client, open_sse, sse_events, unique
from tests.integration.test_realtime_sse import publish
from tests.support.accounts import Account
from tests.support.waiting import eventually


async def stream(client: Any, account: Account, channels: list[str], **headers: str) -> Any:
    response, _ = await open_sse(client, account, channels, **headers)
    return response


async def presence_of(client: Any, account: Account, channel: str) -> bool:
    response = await client.get(f"/realtime/channels/{channel}/presence", headers=account.headers)
    return bool((await response.json())["members"])


def data_of(event: dict[str, Any]) -> Any:
    return orjson.loads(event["data"])["data"]


async def test_several_channels_have_composite_ids_and_resume(client: Any, alice: Account) -> None:
    a, b = unique(), unique()
    response = await stream(client, alice, [a, b])
    ack_a = await publish(client, alice, a, "a1")
    ack_b = await publish(client, alice, b, "b1")
    first, second = await sse_events(response, 2)
    epoch_b = ack_b["cursor"].split(":")[0]
    assert first["id"] == f"{a}={ack_a['cursor']},{b}={epoch_b}:0"
    assert second["id"] == f"{a}={ack_a['cursor']},{b}={ack_b['cursor']}"
    assert [data_of(first), data_of(second)] == ["a1", "b1"]
    response.close()

    await publish(client, alice, a, "a2")
    await publish(client, alice, b, "b2")
    await publish(client, alice, a, "a3")
    resumed = await stream(client, alice, [a, b], **{"Last-Event-ID": second["id"]})
    replayed = await sse_events(resumed, 3)
    assert all(e["event"] == "publication" for e in replayed)
    by_channel: dict[str, list[Any]] = {}
    for event in replayed:
        body = orjson.loads(event["data"])
        by_channel.setdefault(body["channel"], []).append(body["data"])
    assert by_channel == {a: ["a2", "a3"], b: ["b2"]}
    live = await publish(client, alice, b, "b3")
    [event] = await sse_events(resumed, 1)
    assert data_of(event) == "b3"
    assert event["id"].endswith(f"{b}={live['cursor']}")
    resumed.close()


async def test_resuming_from_a_replayed_event_loses_nothing(client: Any, alice: Account) -> None:
    a, b = unique(), unique()
    response = await stream(client, alice, [a, b])
    await publish(client, alice, a, "a1")
    await publish(client, alice, b, "b1")
    _, last = await sse_events(response, 2)
    response.close()
    await publish(client, alice, a, "a2")
    await publish(client, alice, b, "b2")
    resumed = await stream(client, alice, [a, b], **{"Last-Event-ID": last["id"]})
    [replayed] = await sse_events(resumed, 1)
    assert data_of(replayed) == "a2"
    resumed.close()  # the connection drops right after this event: b2 was never seen

    again = await stream(client, alice, [a, b], **{"Last-Event-ID": replayed["id"]})
    await publish(client, alice, b, "b3")
    await publish(client, alice, a, "a3")
    seen_on_b: list[Any] = []
    while (event := (await sse_events(again, 1))[0]) and data_of(event) != "a3":
        seen_on_b.append(data_of(event))
    again.close()
    assert seen_on_b == ["b2", "b3"]


@pytest.mark.parametrize("how", ["header", "query"])
async def test_since_query_works_like_last_event_id(client: Any, alice: Account, how: str) -> None:
    channel = unique()
    first = await publish(client, alice, channel, 1)
    await publish(client, alice, channel, 2)
    await publish(client, alice, channel, 3)
    if how == "header":
        response = await client.get(
            "/realtime/events",
            params={"channels": channel},
            headers={**alice.headers, "Last-Event-ID": first["cursor"]},
        )
    else:
        response = await client.get(
            "/realtime/events",
            params={"channels": channel, "since": first["cursor"]},
            headers=alice.headers,
        )
    events = await sse_events(response, 3)
    assert events[0]["event"] == "connected"
    assert [data_of(e) for e in events[1:]] == [2, 3]
    assert events[-1]["id"].endswith(":3")
    response.close()


async def test_composite_since_may_name_some_of_the_channels(client: Any, alice: Account) -> None:
    a, b = unique(), unique()
    first = await publish(client, alice, a, "a1")
    await publish(client, alice, a, "a2")
    await publish(client, alice, b, "b-before")  # b is not resumed: not replayed
    response = await client.get(
        "/realtime/events",
        params={"channels": f"{a},{b}", "since": f"{a}={first['cursor']}"},
        headers=alice.headers,
    )
    assert response.status == 200
    events = await sse_events(response, 2)
    assert data_of(events[1]) == "a2"
    await eventually(lambda: presence_of(client, alice, b), timeout=5, interval=0.01)
    await publish(client, alice, b, "b-live")
    assert data_of((await sse_events(response, 1))[0]) == "b-live"
    response.close()


async def test_one_unrecoverable_channel_ends_the_stream(client: Any, alice: Account) -> None:
    a, b = unique(), unique()
    ack = await publish(client, alice, a, 1)
    since = f"{a}={ack['cursor']},{b}=deadbeef:7"
    response = await client.get(
        "/realtime/events",
        params={"channels": f"{a},{b}"},
        headers={**alice.headers, "Last-Event-ID": since},
    )
    events = await sse_events(response, 3)
    assert [e["event"] for e in events] == ["connected", "recovery-failed", "close"]
    failed = orjson.loads(events[1]["data"])
    assert failed == {"type": "recovery-failed", "channel": b, "cursor": failed["cursor"]}
    assert orjson.loads(events[2]["data"])["code"] == 1000
    assert await asyncio.wait_for(response.content.read(), 5) == b""  # the stream ended


async def test_keep_alive_comments(aiohttp_client: Any, settings: Any, alice: Account) -> None:
    client = await custom_client(aiohttp_client, settings, SSE_PING_INTERVAL=1)
    response = await stream(client, alice, [unique()])
    async with asyncio.timeout(5):
        while not (await response.content.readline()).startswith(b":"):
            pass
    response.close()


async def test_a_client_that_goes_is_forgotten(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    """The next keep-alive finds the socket closed: the stream ends, the hub forgets it,
    and its presence goes."""
    client = await custom_client(aiohttp_client, settings, SSE_PING_INTERVAL=1)
    hub = client.app[hub_key]
    channel = unique()
    response, hello = await open_sse(client, alice, [channel])
    assert hello["client_id"] in hub.connections
    assert await presence_of(client, alice, channel)
    response.close()

    async def forgotten() -> bool:
        return hello["client_id"] not in hub.connections

    await eventually(forgotten, timeout=10)
    assert not await presence_of(client, alice, channel)


@pytest.mark.parametrize(
    ("last_event_id", "channels"),
    [
        ("garbage", ["public:x"]),
        ("abc:", ["public:x"]),
        ("deadbeef:1", ["public:x", "public:y"]),  # bare cursor for several channels
        ("public:other=deadbeef:1", ["public:x"]),
        ("public:x=nonsense", ["public:x"]),
        ("public:x=deadbeef:1,", ["public:x"]),
        ("=deadbeef:1", ["public:x"]),
    ],
)
async def test_bad_last_event_id_is_400(
    client: Any, alice: Account, last_event_id: str, channels: list[str]
) -> None:
    for request in (
        {"headers": {**alice.headers, "Last-Event-ID": last_event_id}, "params": {}},
        {"headers": alice.headers, "params": {"since": last_event_id}},
    ):
        response = await client.get(
            "/realtime/events",
            params={"channels": ",".join(channels), **request["params"]},
            headers=request["headers"],
        )
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "bad_cursor"


@pytest.mark.parametrize(
    ("channels", "status", "code"),
    [
        ("public:a,public:a", 400, "bad_channels"),
        (",".join(f"public:c{n}" for n in range(17)), 400, "bad_channels"),
        (",,,", 400, "bad_channels"),
        ("a:b:c", 400, "bad_channel"),
        ("public:a,../x", 400, "bad_channel"),
        ("nope:x", 400, "unknown_namespace"),
        ("public:a,admin:x", 403, "forbidden"),
        ("user:1", 403, "forbidden"),
    ],
)
async def test_bad_channel_lists_are_refused(
    client: Any, alice: Account, channels: str, status: int, code: str
) -> None:
    response = await client.get(
        "/realtime/events", params={"channels": channels}, headers=alice.headers
    )
    assert response.status == status
    assert (await response.json())["error"]["code"] == code


async def test_sixteen_channels_are_fine(client: Any, alice: Account) -> None:
    channels = [unique() for _ in range(16)]
    response = await stream(client, alice, channels)
    await publish(client, alice, channels[-1], "last")
    [event] = await sse_events(response, 1)
    assert data_of(event) == "last"
    assert event["id"].count("=") == 16
    response.close()
