"""Ending access ends live connections: logout, logout-all, a password change (the other
sessions), deactivation and deletion close the user's WebSockets with 4003 and end their
event streams with `event: close` {code: 4003}; other users' connections stay open."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from tests.integration.test_auth_tickets import create_key, get_ticket
from tests.integration.test_realtime_channels import (
    assert_answers_ping,
    sse_events,
    subscribe,
    unique,
)
from tests.integration.test_realtime_ws import connect
from tests.support.accounts import PASSWORD, Account, log_in
from tests.support.frames import close_code


async def second_session(client: Any, account: Account) -> Account:
    return await log_in(client, dataclasses.replace(account, access_token="", refresh_token=""))


async def open_stream(client: Any, headers: dict[str, str]) -> Any:
    response = await client.get(f"/realtime/events?channels={unique()}", headers=headers)
    assert response.status == 200
    [connected] = await sse_events(response, 1)
    assert connected["event"] == "connected"
    return response


async def assert_stream_closed_with(response: Any, code: int) -> None:
    [event] = await sse_events(response, 1)
    assert event["event"] == "close"
    body = orjson.loads(event["data"])
    assert body["code"] == code and "revoked" in body["reason"]
    assert await response.content.read() == b""  # the stream ended


async def test_logout_closes_the_sessions_connections_only(
    client: Any, alice: Account, bob: Account
) -> None:
    other_session = await second_session(client, alice)
    ws, stream = await connect(client, alice), await open_stream(client, alice.headers)
    kept = await connect(client, other_session)
    bystander = await connect(client, bob)
    response = await client.post(
        "/auth/logout", json={"refresh_token": alice.refresh_token}, headers=alice.headers
    )
    assert response.status == 204
    assert await close_code(ws) == 4003
    await assert_stream_closed_with(stream, 4003)
    await assert_answers_ping(kept)
    await assert_answers_ping(bystander)
    for open_ws in (kept, bystander):
        await open_ws.close()


async def test_logout_all_closes_every_session(client: Any, alice: Account, bob: Account) -> None:
    other_session = await second_session(client, alice)
    sockets = [await connect(client, alice), await connect(client, other_session)]
    stream = await open_stream(client, other_session.headers)
    bystander = await connect(client, bob)
    response = await client.post("/auth/logout-all", headers=alice.headers)
    assert response.status == 204
    for ws in sockets:
        assert await close_code(ws) == 4003
    await assert_stream_closed_with(stream, 4003)
    await assert_answers_ping(bystander)
    await bystander.close()


async def test_password_change_closes_the_other_sessions(
    client: Any, alice: Account, bob: Account
) -> None:
    old_session = await second_session(client, alice)
    doomed, stream = (
        await connect(client, old_session),
        await open_stream(client, old_session.headers),
    )
    kept = await connect(client, alice)
    bystander = await connect(client, bob)
    response = await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase 42"},
        headers=alice.headers,
    )
    assert response.status == 204, await response.text()
    assert await close_code(doomed) == 4003
    await assert_stream_closed_with(stream, 4003)
    await assert_answers_ping(kept)  # the session that changed the password stays
    await assert_answers_ping(bystander)
    await kept.close()
    await bystander.close()


async def test_deactivation_closes_every_connection_of_the_user(
    client: Any, alice: Account, bob: Account, admin: Account
) -> None:
    key = (await create_key(client, alice, ["realtime"]))["key"]
    ws, stream = await connect(client, alice), await open_stream(client, alice.headers)
    by_key = await connect(client, dataclasses.replace(alice, extra_headers={"X-API-Key": key}))
    bystander = await connect(client, bob)
    response = await client.patch(
        f"/users/{alice.id}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status == 200, await response.text()
    assert await close_code(ws) == 4003
    assert await close_code(by_key) == 4003  # API-key connections too: the user is gone
    await assert_stream_closed_with(stream, 4003)
    await assert_answers_ping(bystander)
    await bystander.close()
    assert (
        await client.get("/realtime/events?channels=public:x", headers=alice.headers)
    ).status == 401


async def test_account_deletion_closes_the_connections(client: Any, alice: Account) -> None:
    ws, stream = await connect(client, alice), await open_stream(client, alice.headers)
    response = await client.request(
        "DELETE", "/users/me", json={"password": PASSWORD}, headers=alice.headers
    )
    assert response.status == 204, await response.text()
    assert await close_code(ws) == 4003
    await assert_stream_closed_with(stream, 4003)


async def test_ticket_connections_are_closed_with_their_session(
    client: Any, alice: Account
) -> None:
    ticket = await get_ticket(client, alice.headers)
    ws = await client.ws_connect("/realtime/ws", params={"ticket": ticket})
    assert (await ws.receive_json(timeout=5))["user_id"] == alice.id
    response = await client.post(
        "/auth/logout", json={"refresh_token": alice.refresh_token}, headers=alice.headers
    )
    assert response.status == 204
    assert await close_code(ws) == 4003


async def test_revoked_api_key_connection_is_closed(client: Any, alice: Account) -> None:
    created = await create_key(client, alice, ["realtime"])
    ws = await connect(
        client, dataclasses.replace(alice, extra_headers={"X-API-Key": created["key"]})
    )
    response = await client.delete(f"/auth/api-keys/{created['id']}", headers=alice.headers)
    assert response.status == 204
    assert await close_code(ws, timeout=3) == 4003


async def test_demoted_admin_stops_receiving_admin_channels(
    client: Any, admin: Account, superuser: Account
) -> None:
    channel = unique("admin")
    ws = await connect(client, admin)
    await subscribe(ws, channel)
    response = await client.patch(
        f"/users/{admin.id}", json={"role": "user"}, headers=superuser.headers
    )
    assert response.status == 200, await response.text()
    response = await client.post(
        "/realtime/broadcast",
        json={"channel": channel, "data": "secret"},
        headers=superuser.headers,
    )
    assert response.status == 202
    # The demotion ends the connection (4003): the client reconnects with its new rights.
    assert await close_code(ws, timeout=3) == 4003
