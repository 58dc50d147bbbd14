"""Recovery on /realtime/ws: `subscribe {since}` replays what was missed, in order and
without duplicates (also while publications keep coming), and says `recovered: false` when
the gap is beyond the history (trimmed, another epoch, a future offset)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.hub.hub import hub_key
from storage.redis import redis_key
from tests.integration.test_realtime_channels import (
    assert_quiet,
    custom_client,
    error_for,
    publications,
    publish,
    subscribe,
    unique,
)
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account


async def test_since_recovers_missed_publications_then_live_ones(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = unique()
    reader, writer = await connect(client, alice), await connect(client, bob)
    start = await subscribe(reader, channel)
    await reader.close()
    acks = [await publish(writer, channel, n) for n in range(5)]
    reader = await connect(client, alice)
    again = await subscribe(reader, channel, since=start["cursor"])
    assert again["recovered"] is True
    assert [p["data"] for p in again["publications"]] == [0, 1, 2, 3, 4]
    assert [p["cursor"] for p in again["publications"]] == [a["cursor"] for a in acks]
    assert again["cursor"] == acks[-1]["cursor"]
    live = await publish(writer, channel, 5)
    [p] = await publications(reader, 1)
    assert (p["data"], p["offset"]) == (5, live["offset"])
    await assert_quiet(reader)
    await reader.close()
    await writer.close()


async def test_recovery_during_a_stream_of_publications_misses_nothing(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = unique()
    writer = await connect(client, bob)
    acks = [await publish(writer, channel, n) for n in range(10)]
    reader = await connect(client, alice)

    async def more() -> None:
        for n in range(10, 70):
            await publish(writer, channel, n)

    stream = asyncio.ensure_future(more())
    reply = await subscribe(reader, channel, since=acks[4]["cursor"])
    assert reply["recovered"] is True
    got = [p["data"] for p in reply["publications"]]
    got += [p["data"] for p in await publications(reader, 70 - 5 - len(got))]
    await stream
    assert got == list(range(5, 70))
    await publish(writer, channel, "end")
    assert [p["data"] for p in await publications(reader, 1)] == ["end"]
    await reader.close()
    await writer.close()


@pytest.mark.parametrize("since", ["deadbeef:1", "future"])
async def test_cursor_of_another_epoch_or_the_future_is_not_recovered(
    client: Any, alice: Account, since: str
) -> None:
    channel = unique()
    ws = await connect(client, alice)
    ack = await publish(ws, channel, 1)
    epoch = ack["cursor"].split(":")[0]
    cursor = since if since != "future" else f"{epoch}:99"  # same epoch, past the end
    reply = await subscribe(ws, channel, since=cursor)
    assert reply["recovered"] is False
    assert reply["publications"] == []
    assert reply["cursor"] == ack["cursor"]  # where to continue from
    await publish(ws, channel, 2)
    assert [p["data"] for p in await publications(ws, 1)] == [2]
    await ws.close()


@pytest.mark.parametrize("since", ["nonsense", "abc:", ":5", "abc:-1", "abc:1x", "a" * 40 + ":1"])
async def test_bad_cursor_is_refused(client: Any, alice: Account, since: str) -> None:
    channel = unique()
    ws = await connect(client, alice)
    error = await error_for(ws, {"type": "subscribe", "channel": channel, "since": since, "id": 3})
    assert (error["code"], error["ref"]) == ("bad_cursor", 3)
    assert (await subscribe(ws, channel))["recovered"] is True  # nothing was left behind
    await ws.close()


async def test_history_trimmed_far_beyond_its_size_is_not_recovered(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    client = await custom_client(
        aiohttp_client, settings, HISTORY_SIZE=3, PUBLISH_BURST=1000, PUBLISH_RATE=1000
    )
    channel = unique()
    ws = await connect(client, alice)
    start = await subscribe(ws, channel)
    await ws.send_json({"type": "unsubscribe", "channel": channel})
    await next_of(ws, "unsubscribed")
    for n in range(250):
        await ws.send_json({"type": "publish", "channel": channel, "data": n})
    for _ in range(250):
        last = await next_of(ws, "ack")
    reply = await subscribe(ws, channel, since=start["cursor"])
    assert (reply["recovered"], reply["publications"]) == (False, [])
    assert reply["cursor"] == last["cursor"]
    await ws.close()


async def test_gap_beyond_history_size_is_not_recovered(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, HISTORY_SIZE=3)
    channel = unique()
    ws = await connect(client, alice)
    first = await publish(ws, channel, 0)
    for n in range(1, 10):
        await publish(ws, channel, n)
    reply = await subscribe(ws, channel, since=first["cursor"])
    await ws.close()
    assert reply["recovered"] is False
    assert reply["publications"] == []


async def test_publishing_goes_on_after_redis_forgets_its_scripts(
    client: Any, alice: Account, bob: Account
) -> None:
    """A Redis restart or SCRIPT FLUSH: the publish script is loaded again, nothing is
    lost or doubled, and the offsets stay consecutive."""

    channel = unique()
    reader, writer = await connect(client, alice), await connect(client, bob)
    await subscribe(reader, channel)
    first = await publish(writer, channel, 0)
    await client.app[redis_key].script_flush()
    second = await publish(writer, channel, 1)
    hub = client.app[hub_key]
    await client.app[redis_key].script_flush()
    third = await hub.publish(channel, b"2", None)
    got = await publications(reader, 3)
    assert [p["data"] for p in got] == [0, 1, 2]
    assert [p["offset"] for p in got] == [first["offset"], second["offset"], third.offset]
    assert third.offset == first["offset"] + 2
    await assert_quiet(reader)
    await reader.close()
    await writer.close()
