"""A key never holds more than its owner: for every scope, a plain user's key with that scope
is refused (403) on exactly the routes that scope opens where the user's own access token is
refused. Scopes narrow a user's rights; they never widen them.

Each route is probed without a body (and with ids that match nothing), so an allowed caller
gets 400/404/415/422 or a harmless read, and nothing changes: the access check runs before
any input is read."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from aiohttp import web

from handlers.openapi import operation_of
from server.kernel.principal import SCOPES
from tests.integration.test_api_keys import as_key, create_key
from tests.integration.test_http_errors import assert_envelope
from tests.support.accounts import Account, log_in

_PARAM = re.compile(r"\{(\w+)[^}]*\}")


def _fill(path: str) -> str:
    return _PARAM.sub(lambda m: "2147483000" if m[1] == "user_id" else str(uuid.uuid4()), path)


def routes_of(app: web.Application, scope: str) -> list[tuple[str, str]]:
    """Every documented route an API key with `scope` may be admitted to."""
    found = set()
    for route in app.router.routes():
        operation = operation_of(route.handler)
        auth = operation.auth if operation is not None else None
        if auth is None or not auth.api_keys or auth.scope != scope or route.method == "HEAD":
            continue
        found.add((route.method, _fill(route.resource.canonical)))  # type: ignore[union-attr]
    return sorted(found)


async def _owner_and_key(
    client: Any, scope: str, alice: Account, admin: Account, superuser: Account
) -> tuple[Account, str]:
    """A plain user and their key with `scope`. Only admins may create `admin` keys, so that
    one is made by an admin who is then demoted to a plain user."""
    if scope != "admin":
        return alice, (await create_key(client, alice, scopes=[scope]))["key"]
    refused = await client.post(
        "/auth/api-keys", json={"name": "x", "scopes": ["admin"]}, headers=alice.headers
    )
    assert refused.status == 403
    key = (await create_key(client, admin, scopes=["admin"]))["key"]
    demoted = await client.patch(
        f"/users/{admin.id}", json={"role": "user"}, headers=superuser.headers
    )
    assert demoted.status == 200, await demoted.text()
    admin.role = "user"
    return await log_in(client, admin), key


@pytest.mark.parametrize("scope", sorted(SCOPES))
async def test_a_plain_users_key_can_do_nothing_its_owner_cannot(
    client: Any,
    app: web.Application,
    alice: Account,
    admin: Account,
    superuser: Account,
    scope: str,
) -> None:
    routes = routes_of(app, scope)
    assert routes, scope
    owner, key = await _owner_and_key(client, scope, alice, admin, superuser)
    widened = []
    for method, path in routes:
        by_token = await client.request(method, path, headers=owner.headers)
        by_key = await client.request(method, path, headers=as_key(key))
        if (by_key.status == 403) != (by_token.status == 403):
            widened.append((method, path, by_token.status, by_key.status))
        elif by_key.status == 403:
            assert_envelope(await by_key.json(), "insufficient_role")
    assert widened == [], widened


async def test_a_plain_users_messaging_key_cannot_notify_anyone(
    client: Any, alice: Account, bob: Account
) -> None:
    key = (await create_key(client, alice, scopes=["messaging"]))["key"]
    body = {"user_id": bob.id, "message": "hi"}
    for headers in (alice.headers, as_key(key)):
        response = await client.post("/messaging/user-notification", json=body, headers=headers)
        assert response.status == 403
        assert_envelope(await response.json(), "insufficient_role")


async def test_an_admins_messaging_key_still_publishes(
    client: Any, admin: Account, bob: Account
) -> None:
    key = (await create_key(client, admin, scopes=["messaging"]))["key"]
    body = {"user_id": bob.id, "message": "hi"}
    response = await client.post("/messaging/user-notification", json=body, headers=as_key(key))
    assert response.status == 202, await response.text()
