"""POST /auth/ws-ticket: a single-use, short-lived ticket for WebSocket/SSE. The redeeming
side (the realtime endpoints) is tested with the realtime issue; here the Authenticator of
the running app redeems tickets directly: once, before expiry, and only while the session or
API key that asked for it still may."""

from __future__ import annotations

from typing import Any

import pytest

from server.auth.authenticator import authenticator_key
from server.kernel.errors import Unauthorized
from server.kernel.security.apikeys import hash_ticket
from server.kernel.settings import Settings, settings_key
from storage.redis import redis_key
from tests.integration.test_auth_login import isolated_client
from tests.integration.test_http_errors import assert_envelope
from tests.support.accounts import Account
from tests.support.jwt_forgery import claims_of
from tests.support.waiting import eventually


async def get_ticket(client: Any, headers: dict[str, str]) -> str:
    response = await client.post("/auth/ws-ticket", headers=headers)
    assert response.status == 200, await response.text()
    ticket: str = (await response.json())["ticket"]
    return ticket


async def redeem_fails(client: Any, ticket: str) -> str:
    with pytest.raises(Unauthorized) as refused:
        await client.app[authenticator_key].redeem_ticket(ticket)
    return str(refused.value.code)


async def create_key(client: Any, owner: Account, scopes: list[str]) -> dict[str, Any]:
    response = await client.post(
        "/auth/api-keys", json={"name": "realtime", "scopes": scopes}, headers=owner.headers
    )
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def test_ticket_answer(client: Any, alice: Account, settings: Settings) -> None:
    response = await client.post("/auth/ws-ticket", headers=alice.headers)
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert set(body) == {"ticket", "expires_in"}
    assert body["expires_in"] == settings.TICKET_TTL
    assert len(body["ticket"]) >= 32
    assert body["ticket"] != await get_ticket(client, alice.headers)


async def test_ticket_needs_authentication(client: Any) -> None:
    response = await client.post("/auth/ws-ticket")
    assert response.status == 401
    assert_envelope(await response.json(), "unauthorized")


async def test_ticket_works_once_for_its_session(client: Any, alice: Account) -> None:
    ticket = await get_ticket(client, alice.headers)
    principal = await client.app[authenticator_key].redeem_ticket(ticket)
    assert principal.user_id == alice.id
    assert str(principal.session_id) == claims_of(alice.access_token)["sid"]
    assert principal.api_key_id is None
    assert await redeem_fails(client, ticket) == "invalid_ticket"


async def test_made_up_tickets_fail(client: Any) -> None:
    for ticket in ("", "x" * 43, "y" * 500):
        assert await redeem_fails(client, ticket) == "invalid_ticket"


async def test_expired_ticket_fails(
    aiohttp_client: Any, settings: Settings, alice: Account
) -> None:
    client = await isolated_client(aiohttp_client, settings, TICKET_TTL=5)
    ticket = await get_ticket(client, alice.headers)
    redis = client.app[redis_key]
    key = f"{client.app[settings_key].REDIS_PREFIX}:auth:ticket:{hash_ticket(ticket)}"
    assert 0 < await redis.ttl(key) <= 5

    async def expired() -> bool:
        return not await redis.exists(key)

    await eventually(expired, timeout=10, interval=0.2)
    assert await redeem_fails(client, ticket) == "invalid_ticket"

    fresh = await get_ticket(client, alice.headers)
    assert (await client.app[authenticator_key].redeem_ticket(fresh)).user_id == alice.id


async def test_ticket_of_an_ended_session_fails(client: Any, alice: Account) -> None:
    ticket = await get_ticket(client, alice.headers)
    response = await client.post(
        "/auth/logout", json={"refresh_token": alice.refresh_token}, headers=alice.headers
    )
    assert response.status == 204
    assert await redeem_fails(client, ticket) == "session_revoked"


async def test_ticket_of_a_deactivated_user_fails(
    client: Any, alice: Account, superuser: Account
) -> None:
    ticket = await get_ticket(client, alice.headers)
    response = await client.patch(
        f"/users/{alice.id}", json={"is_active": False}, headers=superuser.headers
    )
    assert response.status == 200
    assert await redeem_fails(client, ticket) in ("session_revoked", "account_inactive")


async def test_api_key_ticket_carries_the_key_and_its_scopes(client: Any, alice: Account) -> None:
    created = await create_key(client, alice, ["read", "realtime"])
    ticket = await get_ticket(client, {"X-API-Key": created["key"]})
    principal = await client.app[authenticator_key].redeem_ticket(ticket)
    assert principal.user_id == alice.id
    assert str(principal.api_key_id) == created["id"]
    assert principal.scopes == frozenset({"read", "realtime"})
    assert principal.session_id is None
    assert await redeem_fails(client, ticket) == "invalid_ticket"


async def test_api_key_without_realtime_scope_gets_no_ticket(client: Any, alice: Account) -> None:
    created = await create_key(client, alice, ["read", "write"])
    response = await client.post("/auth/ws-ticket", headers={"X-API-Key": created["key"]})
    assert response.status == 403
    assert_envelope(await response.json(), "insufficient_scope")


async def test_api_key_ticket_survives_a_user_cache_miss(client: Any, alice: Account) -> None:
    created = await create_key(client, alice, ["realtime"])
    ticket = await get_ticket(client, {"X-API-Key": created["key"]})
    prefix = client.app[settings_key].REDIS_PREFIX
    await client.app[redis_key].delete(f"{prefix}:auth:user:{alice.id}")  # entry expired
    principal = await client.app[authenticator_key].redeem_ticket(ticket)
    assert principal.user_id == alice.id


async def test_ticket_of_a_revoked_api_key_fails(client: Any, alice: Account) -> None:
    created = await create_key(client, alice, ["realtime"])
    ticket = await get_ticket(client, {"X-API-Key": created["key"]})
    response = await client.delete(f"/auth/api-keys/{created['id']}", headers=alice.headers)
    assert response.status == 204
    assert (await client.get("/users/me", headers={"X-API-Key": created["key"]})).status == 401
    assert await redeem_fails(client, ticket) == "api_key_revoked"
