"""The `message` type: an echo without `to`, a direct message with `to` (a publication on
the target's `user:<id>` channel, and only there), and who may read `user:<id>`."""

from __future__ import annotations

import time
from typing import Any

from tests.integration.test_realtime_channels import (
    assert_quiet,
    error_for,
    publications,
    subscribe,
    unique,
)
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account


async def test_message_without_to_is_echoed(client: Any, alice: Account) -> None:
    ws = await client.ws_connect("/realtime/ws", headers=alice.headers)
    hello = await ws.receive_json(timeout=5)
    await ws.send_json({"type": "message", "text": "héllo ✓", "id": "m1"})
    echo = await next_of(ws, "message")
    assert echo == {
        "type": "message",
        "text": "héllo ✓",
        "from": {"user_id": alice.id, "client_id": hello["client_id"]},
        "ts": echo["ts"],
        "id": "m1",
    }
    assert abs(echo["ts"] - time.time() * 1000) < 60_000
    await ws.close()


async def test_direct_message_reaches_only_the_targets_user_channel(
    client: Any, alice: Account, bob: Account, admin: Account
) -> None:
    public = unique()
    sender = await connect(client, alice)
    target = await connect(client, bob)
    bystander = await connect(client, admin)  # subscribed to nothing
    await subscribe(target, f"user:{bob.id}")
    await subscribe(target, public)
    await subscribe(sender, f"user:{alice.id}")

    await sender.send_json({"type": "message", "text": "hi bob", "to": bob.id, "id": 5})
    ack = await next_of(sender, "ack")
    assert set(ack) == {"type", "id", "offset", "cursor"} and ack["id"] == 5
    [publication] = await publications(target, 1)
    assert publication["channel"] == f"user:{bob.id}"
    assert publication["data"] == {"kind": "direct", "text": "hi bob"}
    assert publication["from"]["user_id"] == alice.id
    assert publication["cursor"] == ack["cursor"]

    # not on bob's other channel, not on the sender's own channel, not to anyone else
    await assert_quiet(target)
    await assert_quiet(sender)
    await assert_quiet(bystander)
    for ws in (sender, target, bystander):
        await ws.close()


async def test_direct_messages_are_kept_in_the_targets_history(
    client: Any, alice: Account, bob: Account
) -> None:
    target = await connect(client, bob)
    start = await subscribe(target, f"user:{bob.id}")
    await target.close()
    sender = await connect(client, alice)
    for text in ("one", "two"):
        await sender.send_json({"type": "message", "text": text, "to": bob.id})
        await next_of(sender, "ack")
    target = await connect(client, bob)
    again = await subscribe(target, f"user:{bob.id}", since=start["cursor"])
    assert again["recovered"] is True
    assert [p["data"]["text"] for p in again["publications"]] == ["one", "two"]
    await sender.close()
    await target.close()


async def test_every_connection_of_the_target_receives_the_direct_message(
    client: Any, alice: Account, bob: Account
) -> None:
    phone, laptop = await connect(client, bob), await connect(client, bob)
    for ws in (phone, laptop):
        await subscribe(ws, f"user:{bob.id}")
    sender = await connect(client, alice)
    await sender.send_json({"type": "message", "text": "both", "to": bob.id})
    await next_of(sender, "ack")
    for ws in (phone, laptop):
        assert [p["data"]["text"] for p in await publications(ws, 1)] == ["both"]
        await ws.close()
    await sender.close()


async def test_someone_elses_user_channel_is_forbidden(
    client: Any, alice: Account, bob: Account
) -> None:
    ws = await connect(client, alice)
    error = await error_for(ws, {"type": "subscribe", "channel": f"user:{bob.id}", "id": 2})
    assert (error["code"], error["ref"]) == ("forbidden", 2)
    assert (await subscribe(ws, f"user:{alice.id}"))["recovered"] is True
    await ws.close()


async def test_admin_and_superuser_may_read_any_user_channel(
    client: Any, alice: Account, bob: Account, admin: Account, superuser: Account
) -> None:
    readers = [await connect(client, admin), await connect(client, superuser)]
    for ws in readers:
        await subscribe(ws, f"user:{alice.id}")
    sender = await connect(client, bob)
    await sender.send_json({"type": "message", "text": "watched", "to": alice.id})
    await next_of(sender, "ack")
    for ws in readers:
        assert [p["data"]["text"] for p in await publications(ws, 1)] == ["watched"]
        await ws.close()
    await sender.close()


async def test_nobody_publishes_on_user_channels_directly(
    client: Any, alice: Account, admin: Account
) -> None:
    for account in (alice, admin):
        ws = await connect(client, account)
        error = await error_for(
            ws, {"type": "publish", "channel": f"user:{alice.id}", "data": "forged"}
        )
        assert error["code"] == "forbidden"
        await ws.close()
