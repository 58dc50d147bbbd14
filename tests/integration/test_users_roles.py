"""Roles rank user < admin < superuser. Admins manage plain users only; only a superuser
grants, changes or removes admin and superuser roles; a role change applies to tokens already
issued; and the last active superuser can be neither demoted, deactivated nor deleted."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from server.kernel.principal import Role
from storage.db import transaction
from tests.integration.test_http_errors import assert_envelope
from tests.support.accounts import PASSWORD, Account, create_account, log_in


async def refused(response: Any, status: int, code: str) -> None:
    assert response.status == status, await response.text()
    assert_envelope(await response.json(), code)


async def role_of(client: Any, account: Account) -> tuple[str, bool]:
    me = await (await client.get("/users/me", headers=account.headers)).json()
    return me["role"], me["is_active"]


@pytest.fixture
async def other_admin(client: Any, db: Any, auth_service: Any) -> Account:
    return await log_in(client, await create_account(db, auth_service, role=Role.admin))


@pytest.mark.parametrize(
    ("target", "method", "body"),
    [
        ("other_admin", "PATCH", {"full_name": "x"}),
        ("other_admin", "PATCH", {"role": "user"}),
        ("other_admin", "PATCH", {"is_active": False}),
        ("other_admin", "DELETE", None),
        ("superuser", "PATCH", {"is_active": False}),
        ("superuser", "DELETE", None),
        ("admin", "PATCH", {"role": "superuser"}),
        ("bob", "PATCH", {"role": "admin"}),
        ("bob", "PATCH", {"role": "superuser"}),
    ],
)
async def test_admins_cannot_touch_privileged_accounts_or_grant_roles(
    client: Any,
    admin: Account,
    other_admin: Account,
    superuser: Account,
    bob: Account,
    target: str,
    method: str,
    body: Any,
) -> None:
    victim = {"admin": admin, "other_admin": other_admin, "superuser": superuser, "bob": bob}[
        target
    ]
    before = await role_of(client, victim)
    response = await client.request(method, f"/users/{victim.id}", json=body, headers=admin.headers)
    await refused(response, 403, "insufficient_role")
    assert await role_of(client, victim) == before


@pytest.mark.parametrize("role", ["admin", "superuser"])
async def test_admins_cannot_create_privileged_users(
    client: Any, admin: Account, role: str
) -> None:
    name = f"p{uuid.uuid4().hex[:8]}"
    body = {"email": f"{name}@example.org", "username": name, "password": PASSWORD, "role": role}
    await refused(
        await client.post("/users", json=body, headers=admin.headers), 403, "insufficient_role"
    )
    found = await client.get("/users", params={"q": name}, headers=admin.headers)
    assert (await found.json())["total"] == 0


async def test_admins_can_read_privileged_accounts(
    client: Any, admin: Account, superuser: Account
) -> None:
    response = await client.get(f"/users/{superuser.id}", headers=admin.headers)
    assert response.status == 200
    assert (await response.json())["role"] == "superuser"


async def test_superuser_grants_and_removes_admin_with_immediate_effect(
    client: Any, superuser: Account, bob: Account
) -> None:
    await refused(await client.get("/users", headers=bob.headers), 403, "insufficient_role")
    granted = await client.patch(
        f"/users/{bob.id}", json={"role": "admin"}, headers=superuser.headers
    )
    assert granted.status == 200
    assert (await granted.json())["role"] == "admin"
    assert (await client.get("/users", headers=bob.headers)).status == 200  # same token

    removed = await client.patch(
        f"/users/{bob.id}", json={"role": "user"}, headers=superuser.headers
    )
    assert removed.status == 200
    await refused(await client.get("/users", headers=bob.headers), 403, "insufficient_role")
    assert (await client.get("/users/me", headers=bob.headers)).status == 200


async def test_superuser_creates_and_manages_privileged_users(
    client: Any, superuser: Account, other_admin: Account
) -> None:
    name = f"s{uuid.uuid4().hex[:8]}"
    body = {"email": f"{name}@example.org", "username": name, "password": PASSWORD}
    created = await client.post(
        "/users", json=body | {"role": "superuser"}, headers=superuser.headers
    )
    assert created.status == 201
    assert (await created.json())["role"] == "superuser"
    off = await client.patch(
        f"/users/{other_admin.id}", json={"is_active": False}, headers=superuser.headers
    )
    assert off.status == 200
    assert (await client.get("/users/me", headers=other_admin.headers)).status == 401
    deleted = await client.delete(f"/users/{other_admin.id}", headers=superuser.headers)
    assert deleted.status == 204


async def only_superuser(db: Any, keep: Account) -> None:
    """Leave `keep` the only active superuser (other tests made superusers in this database)."""
    async with transaction(db) as conn:
        await conn.execute(
            "UPDATE users SET is_active = false WHERE role = 'superuser' AND id <> %(id)s",
            {"id": keep.id},
        )


async def test_last_active_superuser_is_protected(client: Any, db: Any, superuser: Account) -> None:
    await only_superuser(db, superuser)
    for change in ({"role": "admin"}, {"role": "user"}, {"is_active": False}):
        response = await client.patch(
            f"/users/{superuser.id}", json=change, headers=superuser.headers
        )
        await refused(response, 409, "last_superuser")
    await refused(
        await client.delete(f"/users/{superuser.id}", headers=superuser.headers),
        409,
        "last_superuser",
    )
    await refused(
        await client.delete("/users/me", json={"password": PASSWORD}, headers=superuser.headers),
        409,
        "last_superuser",
    )
    assert await role_of(client, superuser) == ("superuser", True)

    # With a second active superuser the same demotion is allowed; then that one is the last.
    name = f"s{uuid.uuid4().hex[:8]}"
    body = {"email": f"{name}@example.org", "username": name, "password": PASSWORD}
    second = await client.post(
        "/users", json=body | {"role": "superuser"}, headers=superuser.headers
    )
    assert second.status == 201
    demoted = await client.patch(
        f"/users/{superuser.id}", json={"role": "admin"}, headers=superuser.headers
    )
    assert demoted.status == 200
    assert await role_of(client, superuser) == ("admin", True)
    heir = await log_in(
        client, Account((await second.json())["id"], body["email"], name, PASSWORD, "superuser")
    )
    await refused(
        await client.patch(f"/users/{heir.id}", json={"role": "user"}, headers=heir.headers),
        409,
        "last_superuser",
    )


async def test_two_superusers_demoting_each_other_leave_one(
    client: Any, db: Any, auth_service: Any, superuser: Account
) -> None:
    partner = await log_in(client, await create_account(db, auth_service, role=Role.superuser))
    await only_superuser(db, superuser)
    async with transaction(db) as conn:  # ...and the partner
        await conn.execute(
            "UPDATE users SET is_active = true WHERE id = %(id)s", {"id": partner.id}
        )

    first, second = await asyncio.gather(
        client.patch(f"/users/{partner.id}", json={"role": "user"}, headers=superuser.headers),
        client.patch(f"/users/{superuser.id}", json={"role": "user"}, headers=partner.headers),
    )
    statuses = sorted([first.status, second.status])
    # 403 when the loser was already demoted before its own request was authenticated
    assert statuses in ([200, 409], [200, 403]), statuses
    roles = [(await role_of(client, account))[0] for account in (superuser, partner)]
    assert sorted(roles) == ["superuser", "user"]
