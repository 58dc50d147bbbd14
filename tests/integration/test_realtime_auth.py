"""Who may open /realtime/ws and /realtime/events: an access token, an API key with the
`realtime` scope (header or Bearer), or a single-use ticket; and from which Origin."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from server.kernel.security.apikeys import hash_ticket
from server.kernel.settings import settings_key
from storage.redis import redis_key
from tests.integration.test_auth_tickets import create_key, get_ticket
from tests.integration.test_http_errors import assert_envelope
from tests.integration.test_realtime_channels import custom_client, sse_events, unique
from tests.support.accounts import Account
from tests.support.waiting import eventually

SURFACES = ["ws", "sse"]


async def attempt(
    client: Any, surface: str, headers: dict[str, str] | None = None, ticket: str | None = None
) -> tuple[int, dict[str, Any] | None]:
    """Open the surface for real; (101 or 200, the `connected` frame) or (status, None)."""
    query = {"ticket": ticket} if ticket is not None else {}
    if surface == "ws":
        try:
            ws = await client.ws_connect("/realtime/ws", headers=headers, params=query)
        except aiohttp.WSServerHandshakeError as refused:
            return refused.status, None
        hello: dict[str, Any] = await ws.receive_json(timeout=5)
        await ws.close()
        return 101, hello
    response = await client.get(
        "/realtime/events", params={"channels": unique(), **query}, headers=headers
    )
    if response.status != 200:
        return response.status, None
    [event] = await sse_events(response, 1)
    response.close()
    assert event["event"] == "connected"
    return 200, orjson.loads(event["data"])


def refused_path(surface: str) -> str:
    """A plain GET (no upgrade) gets the JSON error envelope of a refused connection."""
    return "/realtime/ws" if surface == "ws" else f"/realtime/events?channels={unique()}"


OPEN = {"ws": 101, "sse": 200}


@pytest.mark.parametrize("surface", SURFACES)
async def test_access_token_opens_the_connection(client: Any, alice: Account, surface: str) -> None:
    status, hello = await attempt(client, surface, alice.headers)
    assert status == OPEN[surface]
    assert hello is not None and hello["user_id"] == alice.id


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
async def test_api_key_with_realtime_scope_opens_the_connection(
    client: Any, alice: Account, surface: str, header: str
) -> None:
    key = (await create_key(client, alice, ["realtime"]))["key"]
    value = key if header == "X-API-Key" else f"Bearer {key}"
    status, hello = await attempt(client, surface, {header: value})
    assert status == OPEN[surface]
    assert hello is not None and hello["user_id"] == alice.id


@pytest.mark.parametrize("surface", SURFACES)
async def test_api_key_without_realtime_scope_is_forbidden(
    client: Any, alice: Account, surface: str
) -> None:
    key = (await create_key(client, alice, ["read", "write"]))["key"]
    assert (await attempt(client, surface, {"X-API-Key": key}))[0] == 403
    response = await client.get(refused_path(surface), headers={"X-API-Key": key})
    assert response.status == 403
    assert_envelope(await response.json(), "insufficient_scope")


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "rtk_garbage"},
    ],
)
async def test_missing_or_bad_credentials_get_401(
    client: Any, surface: str, headers: dict[str, str]
) -> None:
    assert (await attempt(client, surface, headers))[0] == 401
    response = await client.get(refused_path(surface), headers=headers)
    assert response.status == 401


@pytest.mark.parametrize("surface", SURFACES)
async def test_ticket_works_once(client: Any, alice: Account, surface: str) -> None:
    ticket = await get_ticket(client, alice.headers)
    status, hello = await attempt(client, surface, ticket=ticket)
    assert status == OPEN[surface]
    assert hello is not None and hello["user_id"] == alice.id
    assert (await attempt(client, surface, ticket=ticket))[0] == 401
    other = "sse" if surface == "ws" else "ws"
    assert (await attempt(client, other, ticket=ticket))[0] == 401


async def test_ticket_of_an_api_key_opens_a_websocket(client: Any, alice: Account) -> None:
    key = (await create_key(client, alice, ["realtime"]))["key"]
    ticket = await get_ticket(client, {"X-API-Key": key})
    status, hello = await attempt(client, "ws", ticket=ticket)
    assert status == 101
    assert hello is not None and hello["user_id"] == alice.id


@pytest.mark.parametrize("surface", SURFACES)
async def test_expired_ticket_gets_401(client: Any, alice: Account, surface: str) -> None:
    ticket = await get_ticket(client, alice.headers)
    prefix = client.app[settings_key].REDIS_PREFIX
    assert await client.app[redis_key].delete(f"{prefix}:auth:ticket:{hash_ticket(ticket)}") == 1
    assert (await attempt(client, surface, ticket=ticket))[0] == 401


@pytest.mark.slow
async def test_ticket_expires_after_its_ttl(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, TICKET_TTL=5)
    ticket, spare = await get_ticket(client, alice.headers), await get_ticket(client, alice.headers)
    prefix = client.app[settings_key].REDIS_PREFIX
    redis = client.app[redis_key]

    async def gone() -> bool:
        return not await redis.exists(f"{prefix}:auth:ticket:{hash_ticket(spare)}")

    await eventually(gone, timeout=10, interval=0.2)
    assert (await attempt(client, "ws", ticket=ticket))[0] == 401
    assert (await attempt(client, "sse", ticket=spare))[0] == 401


@pytest.mark.parametrize("surface", SURFACES)
async def test_made_up_ticket_gets_401(client: Any, surface: str) -> None:
    for ticket in ("", "x" * 43, "y" * 300):
        assert (await attempt(client, surface, ticket=ticket))[0] == 401


# -- Origin ----------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "http://127.0.0.1.evil.example"]
)
async def test_foreign_origin_is_refused(
    client: Any, alice: Account, surface: str, origin: str
) -> None:
    headers = {**alice.headers, "Origin": origin}
    assert (await attempt(client, surface, headers))[0] == 403
    response = await client.get(refused_path(surface), headers=headers)
    assert response.status == 403
    assert_envelope(await response.json(), "origin_not_allowed")


@pytest.mark.parametrize("surface", SURFACES)
async def test_same_origin_is_accepted(client: Any, alice: Account, surface: str) -> None:
    origin = str(client.make_url("/")).rstrip("/")
    status, hello = await attempt(client, surface, {**alice.headers, "Origin": origin})
    assert status == OPEN[surface]
    assert hello is not None and hello["user_id"] == alice.id


@pytest.mark.parametrize("surface", SURFACES)
async def test_listed_origins_are_accepted_others_still_refused(
    aiohttp_client: Any, settings: Any, alice: Account, surface: str
) -> None:
    client = await custom_client(
        aiohttp_client, settings, WS_ALLOWED_ORIGINS="https://app.example.org, https://b.example"
    )
    for origin in ("https://app.example.org", "https://b.example/"):
        headers = {**alice.headers, "Origin": origin}
        assert (await attempt(client, surface, headers))[0] == OPEN[surface], origin
    headers = {**alice.headers, "Origin": "https://evil.example"}
    assert (await attempt(client, surface, headers))[0] == 403


@pytest.mark.parametrize("surface", SURFACES)
async def test_star_allows_any_origin(
    aiohttp_client: Any, settings: Any, alice: Account, surface: str
) -> None:
    client = await custom_client(aiohttp_client, settings, WS_ALLOWED_ORIGINS="*")
    headers = {**alice.headers, "Origin": "https://anywhere.example"}
    assert (await attempt(client, surface, headers))[0] == OPEN[surface]
