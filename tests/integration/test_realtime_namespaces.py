"""Who may subscribe and publish, by namespace: the built-in table (public, user, admin,
system) for each role, and namespaces added with CHANNEL_NAMESPACES."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from tests.conftest import make_settings
from tests.integration.test_realtime_channels import (
    assert_answers_ping,
    custom_client,
    error_for,
    publications,
    publish,
    subscribe,
    unique,
)
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account

# (channel kind, role) -> (may subscribe, may publish)
TABLE = {
    ("public", "user"): (True, True),
    ("public", "admin"): (True, True),
    ("own-user", "user"): (True, False),
    ("other-user", "user"): (False, False),
    ("other-user", "admin"): (True, False),
    ("other-user", "superuser"): (True, False),
    ("admin", "user"): (False, False),
    ("admin", "admin"): (True, True),
    ("admin", "superuser"): (True, True),
    ("system", "user"): (False, False),
    ("system", "admin"): (True, False),
    ("system", "superuser"): (True, False),
}


def channel_of(kind: str, me: Account, other: Account) -> str:
    return {
        "public": unique(),
        "own-user": f"user:{me.id}",
        "other-user": f"user:{other.id}",
        "admin": unique("admin"),
        "system": "system",
    }[kind]


async def outcome(ws: Any, message: dict[str, Any]) -> str:
    """ "ok" or the error code."""
    await ws.send_json({**message, "id": "q"})
    while True:
        frame = await ws.receive_json(timeout=5)
        if frame.get("id") == "q" or frame.get("ref") == "q":
            return "ok" if frame["type"] != "error" else str(frame["code"])


async def test_permission_table(
    client: Any, alice: Account, bob: Account, admin: Account, superuser: Account
) -> None:
    accounts = {"user": alice, "admin": admin, "superuser": superuser}
    for (kind, role), (may_subscribe, may_publish) in TABLE.items():
        me = accounts[role]
        ws = await connect(client, me)
        channel = channel_of(kind, me, bob)
        got = await outcome(ws, {"type": "subscribe", "channel": channel})
        assert got == ("ok" if may_subscribe else "forbidden"), (kind, role, "subscribe")
        got = await outcome(ws, {"type": "publish", "channel": channel, "data": {"by": role}})
        assert got == ("ok" if may_publish else "forbidden"), (kind, role, "publish")
        await assert_answers_ping(ws)
        await ws.close()


async def test_admin_channel_publications_reach_admins(
    client: Any, admin: Account, superuser: Account
) -> None:
    channel = unique("admin")
    reader, writer = await connect(client, superuser), await connect(client, admin)
    await subscribe(reader, channel)
    ack = await publish(writer, channel, "ops")
    [p] = await publications(reader, 1)
    assert (p["data"], p["cursor"]) == ("ops", ack["cursor"])
    await reader.close()
    await writer.close()


async def test_system_is_read_only_but_the_server_publishes_there(
    client: Any, admin: Account
) -> None:
    ws = await connect(client, admin)
    await subscribe(ws, "system")
    response = await client.post(
        "/realtime/broadcast", json={"channel": "system", "data": {"m": 1}}, headers=admin.headers
    )
    assert response.status == 202, await response.text()
    [p] = await publications(ws, 1)
    assert (p["channel"], p["data"]) == ("system", {"m": 1})
    assert p["from"] == {"user_id": admin.id, "client_id": None}
    await ws.close()


CUSTOM = (
    '{"chat": {"subscribe": "user", "publish": "user", "presence": true, "join_leave": true},'
    ' "news": {"subscribe": "user", "publish": "admin"},'
    ' "inbox": {"subscribe": "owner", "publish": "nobody"},'
    ' "vault": {"subscribe": "admin", "publish": "nobody"}}'
)


async def test_custom_namespaces(
    aiohttp_client: Any, settings: Any, alice: Account, bob: Account, admin: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, CHANNEL_NAMESPACES=CUSTOM)
    user, boss = await connect(client, alice), await connect(client, admin)

    chat = unique("chat")
    assert await outcome(user, {"type": "subscribe", "channel": chat}) == "ok"
    assert await outcome(user, {"type": "publish", "channel": chat, "data": 1}) == "ok"
    await user.send_json({"type": "presence", "channel": chat})
    assert [m["user_id"] for m in (await next_of(user, "presence"))["members"]] == [alice.id]

    news = unique("news")
    assert await outcome(user, {"type": "subscribe", "channel": news}) == "ok"
    assert await outcome(user, {"type": "publish", "channel": news, "data": 1}) == "forbidden"
    await publish(boss, news, "headline")
    while (p := (await publications(user, 1))[0])["channel"] != news:
        assert p["channel"] == chat
    assert p["data"] == "headline"

    mine, theirs = f"inbox:{alice.id}", f"inbox:{bob.id}"
    assert await outcome(user, {"type": "subscribe", "channel": mine}) == "ok"
    assert await outcome(user, {"type": "subscribe", "channel": theirs}) == "forbidden"
    assert await outcome(boss, {"type": "subscribe", "channel": theirs}) == "ok"
    for ws, channel in ((user, mine), (boss, theirs)):
        assert await outcome(ws, {"type": "publish", "channel": channel, "data": 1}) == "forbidden"
    error = await error_for(user, {"type": "presence", "channel": mine})
    assert error["code"] == "presence_disabled"

    vault = unique("vault")
    assert await outcome(user, {"type": "subscribe", "channel": vault}) == "forbidden"
    assert await outcome(boss, {"type": "subscribe", "channel": vault}) == "ok"
    assert await outcome(boss, {"type": "publish", "channel": vault, "data": 1}) == "forbidden"

    # the built-ins are still there
    assert await outcome(user, {"type": "subscribe", "channel": unique()}) == "ok"
    assert await outcome(user, {"type": "subscribe", "channel": "system"}) == "forbidden"
    for ws in (user, boss):
        await ws.close()


async def test_custom_namespace_join_events(
    aiohttp_client: Any, settings: Any, alice: Account, bob: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, CHANNEL_NAMESPACES=CUSTOM)
    chat, news = unique("chat"), unique("news")
    watcher = await connect(client, alice)
    await subscribe(watcher, chat)
    await subscribe(watcher, news)
    other = await client.ws_connect("/realtime/ws", headers=bob.headers)
    hello = await other.receive_json(timeout=5)
    await subscribe(other, news)  # news has no join/leave: nothing is announced
    await subscribe(other, chat)
    joined = await next_of(watcher, "join")
    while joined["info"]["client_id"] != hello["client_id"]:  # skip our own join
        joined = await next_of(watcher, "join")
    assert joined["channel"] == chat
    await watcher.close()
    await other.close()


async def test_unknown_namespace(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    for channel in ("chat:room", "nope", "inbox:1"):
        assert (await error_for(ws, {"type": "subscribe", "channel": channel}))["code"] == (
            "unknown_namespace"
        )
    await ws.close()


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "[1]",
        '{"Chat": {}}',
        '{"chat": {"subscribe": "everyone"}}',
        '{"chat": {"color": "red"}}',
        '{"chat": 5}',
    ],
)
def test_bad_channel_namespaces_setting_is_refused(value: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="CHANNEL_NAMESPACES"):
        make_settings(CHANNEL_NAMESPACES=value)
