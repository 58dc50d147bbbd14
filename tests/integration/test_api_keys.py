"""API keys (/auth/api-keys): shown once as `rtk_<43 base62>_<6 base62 CRC32 checksum>`,
never listed again; they authenticate with X-API-Key or Authorization: Bearer, act as their
owner within their scopes, cannot manage credentials, and stop working at once when revoked,
expired or their owner is deactivated."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import string
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.auth.authenticator import authenticator_key
from storage.db import transaction
from tests.integration.test_http_errors import assert_envelope
from tests.support.accounts import Account

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
KEY_FORMAT = re.compile(r"rtk_(?P<random>[0-9A-Za-z]{43})_(?P<checksum>[0-9A-Za-z]{6})")


def checksum(random_part: str) -> str:
    number, digits = zlib.crc32(random_part.encode()), ""
    while number:
        number, remainder = divmod(number, 62)
        digits = BASE62[remainder] + digits
    return digits.rjust(6, "0")


async def create_key(client: Any, owner: Account, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/auth/api-keys", json={"name": "ci", **body}, headers=owner.headers
    )
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def refused(response: Any, status: int, code: str) -> None:
    assert response.status == status, await response.text()
    assert_envelope(await response.json(), code)


def as_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


async def test_key_is_shown_once_in_its_format(client: Any, alice: Account) -> None:
    response = await client.post("/auth/api-keys", json={"name": "deploy"}, headers=alice.headers)
    assert response.status == 201
    assert response.headers["Cache-Control"] == "no-store"
    created = await response.json()
    match = KEY_FORMAT.fullmatch(created["key"])
    assert match, created["key"]
    assert match["checksum"] == checksum(match["random"])
    assert created["name"] == "deploy"
    assert sorted(created["scopes"]) == ["read", "write"]
    assert created["expires_at"] is None and created["last_used_at"] is None
    second = await create_key(client, alice)
    assert second["key"] != created["key"]


async def test_listing_never_holds_the_key_or_its_hash(client: Any, alice: Account) -> None:
    created = await create_key(client, alice, scopes=["read"])
    await client.get("/users/me", headers=as_key(created["key"]))
    response = await client.get("/auth/api-keys", headers=alice.headers)
    assert response.status == 200
    text = await response.text()
    assert created["key"] not in text
    assert hashlib.sha256(created["key"].encode()).hexdigest() not in text
    assert KEY_FORMAT.fullmatch(created["key"])["random"][:12] not in text  # type: ignore[index]
    (listed,) = await response.json()
    assert set(listed) == {"id", "name", "scopes", "created_at", "expires_at", "last_used_at"}
    assert listed["id"] == created["id"] and listed["last_used_at"] is not None


@pytest.mark.parametrize("style", ["x-api-key", "bearer"])
async def test_key_authenticates_and_acts_as_its_owner(
    client: Any, alice: Account, bob: Account, style: str
) -> None:
    key = (await create_key(client, alice))["key"]
    headers = as_key(key) if style == "x-api-key" else {"Authorization": f"Bearer {key}"}
    me = await client.get("/users/me", headers=headers)
    assert me.status == 200
    assert (await me.json())["id"] == alice.id

    task = await client.post("/tasks/example", json={"seconds": 0}, headers=headers)
    assert task.status == 202
    task_id = (await task.json())["id"]
    assert (await client.get(f"/tasks/{task_id}", headers=alice.headers)).status == 200
    assert (await client.get(f"/tasks/{task_id}", headers=bob.headers)).status == 404


async def test_revoked_key_stops_at_once(client: Any, alice: Account, bob: Account) -> None:
    created = await create_key(client, alice)
    assert (await client.get("/users/me", headers=as_key(created["key"]))).status == 200
    not_bobs = await client.delete(f"/auth/api-keys/{created['id']}", headers=bob.headers)
    await refused(not_bobs, 404, "not_found")
    assert (await client.get("/users/me", headers=as_key(created["key"]))).status == 200

    response = await client.delete(f"/auth/api-keys/{created['id']}", headers=alice.headers)
    assert response.status == 204
    await refused(
        await client.get("/users/me", headers=as_key(created["key"])), 401, "api_key_revoked"
    )
    listed = await (await client.get("/auth/api-keys", headers=alice.headers)).json()
    assert created["id"] not in [k["id"] for k in listed]
    again = await client.delete(f"/auth/api-keys/{created['id']}", headers=alice.headers)
    assert again.status == 404


async def test_read_only_key_cannot_write(client: Any, alice: Account) -> None:
    key = (await create_key(client, alice, scopes=["read"]))["key"]
    assert (await client.get("/users/me", headers=as_key(key))).status == 200
    response = await client.post("/tasks/example", json={"seconds": 0}, headers=as_key(key))
    await refused(response, 403, "insufficient_scope")
    patch = await client.patch("/users/me", json={"full_name": "x"}, headers=as_key(key))
    await refused(patch, 403, "insufficient_scope")


async def test_admin_needs_the_admin_scope_on_the_key(client: Any, admin: Account) -> None:
    plain = (await create_key(client, admin))["key"]
    await refused(await client.get("/users", headers=as_key(plain)), 403, "insufficient_scope")
    scoped = (await create_key(client, admin, scopes=["read", "admin"]))["key"]
    assert (await client.get("/users", headers=as_key(scoped))).status == 200


async def test_user_cannot_create_an_admin_key(client: Any, alice: Account) -> None:
    response = await client.post(
        "/auth/api-keys", json={"name": "x", "scopes": ["admin"]}, headers=alice.headers
    )
    await refused(response, 403, "insufficient_role")
    listed = await (await client.get("/auth/api-keys", headers=alice.headers)).json()
    assert listed == []


async def test_admin_scope_does_not_outrank_the_owner(
    client: Any, admin: Account, superuser: Account
) -> None:
    key = (await create_key(client, admin, scopes=["admin"]))["key"]
    demoted = await client.patch(
        f"/users/{admin.id}", json={"role": "user"}, headers=superuser.headers
    )
    assert demoted.status == 200
    await refused(await client.get("/users", headers=as_key(key)), 403, "insufficient_role")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/auth/api-keys", {"name": "child"}),
        ("POST", "/users/me/password", {"current_password": "a", "new_password": "b"}),
        ("GET", "/auth/sessions", None),
        ("POST", "/auth/logout-all", None),
        ("DELETE", "/users/me", {"password": "whatever"}),
    ],
)
async def test_keys_cannot_manage_credentials(
    client: Any, alice: Account, method: str, path: str, body: Any
) -> None:
    key = (await create_key(client, alice, scopes=["read", "write"]))["key"]
    response = await client.request(method, path, json=body, headers=as_key(key))
    await refused(response, 403, "api_key_not_allowed")
    assert (await client.get("/users/me", headers=alice.headers)).status == 200


async def test_expired_key_is_401(client: Any, db: Any, alice: Account) -> None:
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = await create_key(client, alice, expires_at=expires)
    assert created["expires_at"] is not None
    async with transaction(db) as conn:  # an hour passes
        await conn.execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = %(id)s",
            {"id": created["id"]},
        )
    response = await client.get("/users/me", headers=as_key(created["key"]))
    await refused(response, 401, "api_key_expired")


@pytest.mark.parametrize("expires_at", ["2001-01-01T00:00:00Z", "2999-01-01T00:00:00", "next week"])
async def test_past_or_naive_expiry_is_422(client: Any, alice: Account, expires_at: str) -> None:
    response = await client.post(
        "/auth/api-keys", json={"name": "x", "expires_at": expires_at}, headers=alice.headers
    )
    await refused(response, 422, "validation_error")


async def test_unknown_scope_is_422(client: Any, alice: Account) -> None:
    response = await client.post(
        "/auth/api-keys", json={"name": "x", "scopes": ["root"]}, headers=alice.headers
    )
    await refused(response, 422, "validation_error")


def flip(key: str, index: int) -> str:
    replacement = "A" if key[index] != "A" else "B"
    return key[:index] + replacement + key[index + 1 :]


async def test_garbage_and_damaged_keys_are_401(client: Any, alice: Account) -> None:
    key = (await create_key(client, alice))["key"]
    random_part = "".join(secrets.choice(BASE62) for _ in range(43))
    unknown_but_well_formed = f"rtk_{random_part}_{checksum(random_part)}"
    for bad in [
        "garbage",
        "rtk_",
        flip(key, len(key) - 1),  # a checksum character
        flip(key, 10),  # a random character: the checksum no longer matches
        key + "x",
        key.replace("rtk_", "abc_"),
        unknown_but_well_formed,
    ]:
        await refused(await client.get("/users/me", headers=as_key(bad)), 401, "invalid_api_key")
    bearer = {"Authorization": f"Bearer {flip(key, len(key) - 2)}"}
    await refused(await client.get("/users/me", headers=bearer), 401, "invalid_api_key")
    assert (await client.get("/users/me", headers=as_key(key))).status == 200


async def test_owner_deactivated_stops_the_key_at_once(
    client: Any, alice: Account, superuser: Account
) -> None:
    key = (await create_key(client, alice))["key"]
    assert (await client.get("/users/me", headers=as_key(key))).status == 200
    response = await client.patch(
        f"/users/{alice.id}", json={"is_active": False}, headers=superuser.headers
    )
    assert response.status == 200
    await refused(await client.get("/users/me", headers=as_key(key)), 401, "account_inactive")


async def test_revocation_wins_over_a_concurrent_cache_fill(
    client: Any, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await create_key(client, alice)
    auth = client.app[authenticator_key]
    original_fill = auth._fill
    read_the_key, revoked = asyncio.Event(), asyncio.Event()

    async def fill_after_the_revocation(key: str, value: dict[str, Any]) -> None:
        if ":auth:apikey:" in key and not revoked.is_set():
            read_the_key.set()
            await revoked.wait()
        await original_fill(key, value)

    monkeypatch.setattr(auth, "_fill", fill_after_the_revocation)
    in_flight = asyncio.create_task(client.get("/users/me", headers=as_key(created["key"])))
    await asyncio.wait_for(read_the_key.wait(), timeout=5)
    response = await client.delete(f"/auth/api-keys/{created['id']}", headers=alice.headers)
    assert response.status == 204
    revoked.set()
    assert (await in_flight).status == 200  # it was checked before the revocation
    later = await client.get("/users/me", headers=as_key(created["key"]))
    await refused(later, 401, "api_key_revoked")
