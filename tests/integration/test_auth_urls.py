"""Credentials never travel in URLs, except the single-use ticket of WebSocket/SSE: REST
endpoints ignore tokens, keys and tickets in the query string, and the access log (the
AccessLogger that `python -m server serve` installs) redacts `ticket` and `token` values."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.auth.authenticator import authenticator_key
from server.kernel.settings import Settings
from server.kernel.telemetry import AccessLogger
from tests.integration.test_http_errors import assert_envelope
from tests.support.accounts import Account
from tests.support.waiting import eventually


@pytest.fixture
async def logged_client(aiohttp_client: Any, settings: Settings) -> Any:
    """A client of a server whose runner uses the production access logger."""
    server = TestServer(create_app(settings))
    await server.start_server(access_log_class=AccessLogger)
    return await aiohttp_client(server)


async def access_lines(caplog: pytest.LogCaptureFixture, path: str) -> list[str]:
    async def logged() -> list[str]:
        return [
            record.getMessage()
            for record in caplog.records
            if record.name == "aiohttp.access" and path in record.getMessage()
        ]

    return await eventually(logged, timeout=5)


async def test_access_log_redacts_ticket_and_token(
    logged_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    response = await logged_client.get("/health/live?ticket=SECRET1&token=SECRET2&probe=kept")
    assert response.status == 200
    (line,) = await access_lines(caplog, "/health/live")
    assert "SECRET1" not in line and "SECRET2" not in line
    assert "ticket=REDACTED" in line and "token=REDACTED" in line
    assert "probe=kept" in line  # the rest of the query is still there


async def test_access_log_never_holds_a_real_token(
    logged_client: Any, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    ticket = (await (await logged_client.post("/auth/ws-ticket", headers=alice.headers)).json())[
        "ticket"
    ]
    await logged_client.get(f"/users/me?token={alice.access_token}&ticket={ticket}")
    (line,) = await access_lines(caplog, "/users/me")
    assert alice.access_token not in line
    assert ticket not in line
    every_line = "\n".join(record.getMessage() for record in caplog.records)
    assert alice.access_token not in every_line and alice.refresh_token not in every_line


@pytest.mark.parametrize("name", ["token", "access_token", "jwt", "bearer", "authorization"])
async def test_access_token_in_the_query_is_ignored(client: Any, alice: Account, name: str) -> None:
    response = await client.get(f"/users/me?{name}={alice.access_token}")
    assert response.status == 401
    assert_envelope(await response.json(), "unauthorized")


@pytest.mark.parametrize("name", ["api_key", "apikey", "key", "x-api-key"])
async def test_api_key_in_the_query_is_ignored(client: Any, alice: Account, name: str) -> None:
    created = await (
        await client.post("/auth/api-keys", json={"name": "q"}, headers=alice.headers)
    ).json()
    response = await client.get(f"/users/me?{name}={created['key']}")
    assert response.status == 401
    assert (await client.get("/users/me", headers={"X-API-Key": created["key"]})).status == 200


async def test_ticket_opens_no_rest_endpoint_and_is_not_spent_by_trying(
    client: Any, alice: Account
) -> None:
    ticket = (await (await client.post("/auth/ws-ticket", headers=alice.headers)).json())["ticket"]
    response = await client.get(f"/users/me?ticket={ticket}")
    assert response.status == 401
    assert_envelope(await response.json(), "unauthorized")
    principal = await client.app[authenticator_key].redeem_ticket(ticket)
    assert principal.user_id == alice.id


async def test_login_and_refresh_answers_are_not_cached(client: Any, alice: Account) -> None:
    refreshed = await client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert refreshed.status == 200
    assert refreshed.headers["Cache-Control"] == "no-store"
    assert "Location" not in refreshed.headers
