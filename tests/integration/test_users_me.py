"""Your own account: GET/PATCH/DELETE /users/me and POST /users/me/password. A password
change ends your other sessions at once and keeps this one; deleting the account needs the
password and ends every credential. Nobody reads or changes another user's account or
sees another user's task."""

from __future__ import annotations

from typing import Any

import pytest

from server.kernel.errors import Unauthorized
from storage.db import transaction
from tests.integration.test_http_errors import assert_envelope
from tests.support.accounts import Account, log_in

NEW_PASSWORD = "a brand new passphrase 42"


async def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    return assert_envelope(await response.json(), code)


async def another_session(client: Any, account: Account) -> Account:
    twin = Account(account.id, account.email, account.username, account.password, account.role)
    return await log_in(client, twin)


async def password_works(db: Any, auth_service: Any, login: str, password: str) -> bool:
    """Checked through the service, so a wrong guess is not a throttled failed login."""
    async with transaction(db) as conn:
        try:
            await auth_service.verify_credentials(conn, login, password)
        except Unauthorized:
            return False
    return True


async def test_get_me(client: Any, alice: Account) -> None:
    response = await client.get("/users/me", headers=alice.headers)
    assert response.status == 200
    me = await response.json()
    assert (me["id"], me["email"], me["username"], me["role"]) == (
        alice.id,
        alice.email,
        alice.username,
        "user",
    )
    assert me["is_active"] is True and me["last_login_at"] is not None
    assert "password_hash" not in me and "password" not in await response.text()


async def test_me_needs_authentication(client: Any) -> None:
    await refused(await client.get("/users/me"), 401, "unauthorized")


async def test_patch_me_changes_the_profile(client: Any, alice: Account) -> None:
    changes = {
        "full_name": "Alice Liddell",
        "username": f"{alice.username}x",
        "email": f"new.{alice.email}",
    }
    response = await client.patch("/users/me", json=changes, headers=alice.headers)
    assert response.status == 200, await response.text()
    assert {k: (await response.json())[k] for k in changes} == changes
    again = await (await client.get("/users/me", headers=alice.headers)).json()
    assert {k: again[k] for k in changes} == changes
    relogin = await client.post(
        "/auth/login", json={"username": changes["username"], "password": alice.password}
    )
    assert relogin.status == 200


async def test_patch_me_to_a_taken_name_is_409(client: Any, alice: Account, bob: Account) -> None:
    response = await client.patch(
        "/users/me", json={"username": bob.username.upper()}, headers=alice.headers
    )
    error = await refused(response, 409, "conflict")
    assert error["details"] == {"field": "username"}
    taken_email = await client.patch("/users/me", json={"email": bob.email}, headers=alice.headers)
    assert (await refused(taken_email, 409, "conflict"))["details"] == {"field": "email"}


@pytest.mark.parametrize("field", ["role", "is_active", "id", "password_hash"])
async def test_patch_me_cannot_touch_privileged_fields(
    client: Any, alice: Account, field: str
) -> None:
    value = {"role": "superuser", "is_active": False, "id": 1, "password_hash": "x"}[field]
    response = await client.patch("/users/me", json={field: value}, headers=alice.headers)
    await refused(response, 422, "validation_error")
    me = await (await client.get("/users/me", headers=alice.headers)).json()
    assert (me["role"], me["is_active"], me["id"]) == ("user", True, alice.id)


@pytest.mark.parametrize("field", ["email", "username"])
async def test_patch_me_with_null_required_field_is_422(
    client: Any, alice: Account, field: str
) -> None:
    response = await client.patch("/users/me", json={field: None}, headers=alice.headers)
    await refused(response, 422, "validation_error")


async def test_password_change_needs_the_current_password(
    client: Any, db: Any, auth_service: Any, alice: Account
) -> None:
    response = await client.post(
        "/users/me/password",
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
        headers=alice.headers,
    )
    await refused(response, 403, "wrong_password")
    assert await password_works(db, auth_service, alice.email, alice.password)
    assert not await password_works(db, auth_service, alice.email, NEW_PASSWORD)


@pytest.mark.parametrize("weak", ["short", "password123", "USERNAME"])
async def test_weak_new_password_is_422(
    client: Any, db: Any, auth_service: Any, alice: Account, weak: str
) -> None:
    new_password = alice.username.upper() if weak == "USERNAME" else weak
    response = await client.post(
        "/users/me/password",
        json={"current_password": alice.password, "new_password": new_password},
        headers=alice.headers,
    )
    # Too short is the document's own minLength (validation_error); the rest it can only
    # describe (weak_password).
    await refused(response, 422, "validation_error" if weak == "short" else "weak_password")
    assert await password_works(db, auth_service, alice.email, alice.password)


async def test_password_change_ends_the_other_sessions_only(
    client: Any, db: Any, auth_service: Any, alice: Account, bob: Account
) -> None:
    laptop = await another_session(client, alice)
    response = await client.post(
        "/users/me/password",
        json={"current_password": alice.password, "new_password": NEW_PASSWORD},
        headers=alice.headers,
    )
    assert response.status == 204, await response.text()
    await refused(await client.get("/users/me", headers=laptop.headers), 401, "session_revoked")
    refreshed = await client.post("/auth/refresh", json={"refresh_token": laptop.refresh_token})
    assert refreshed.status == 401
    assert (await client.get("/users/me", headers=alice.headers)).status == 200
    assert (
        await client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    ).status == 200
    assert (await client.get("/users/me", headers=bob.headers)).status == 200

    assert await password_works(db, auth_service, alice.email, NEW_PASSWORD)
    assert not await password_works(db, auth_service, alice.email, alice.password)


async def test_delete_me_needs_the_password(
    client: Any, db: Any, auth_service: Any, alice: Account
) -> None:
    await refused(
        await client.delete("/users/me", json={}, headers=alice.headers), 422, "validation_error"
    )
    wrong = await client.delete("/users/me", json={"password": "nope nope"}, headers=alice.headers)
    await refused(wrong, 403, "wrong_password")
    assert (await client.get("/users/me", headers=alice.headers)).status == 200
    assert await password_works(db, auth_service, alice.email, alice.password)


async def test_delete_me_ends_every_credential(
    client: Any, db: Any, auth_service: Any, alice: Account
) -> None:
    laptop = await another_session(client, alice)
    key = await (
        await client.post("/auth/api-keys", json={"name": "k"}, headers=alice.headers)
    ).json()
    assert (await client.get("/users/me", headers={"X-API-Key": key["key"]})).status == 200

    response = await client.delete(
        "/users/me", json={"password": alice.password}, headers=alice.headers
    )
    assert response.status == 204
    for headers in (alice.headers, laptop.headers, {"X-API-Key": key["key"]}):
        assert (await client.get("/users/me", headers=headers)).status == 401
    refreshed = await client.post("/auth/refresh", json={"refresh_token": laptop.refresh_token})
    assert refreshed.status == 401
    assert not await password_works(db, auth_service, alice.email, alice.password)
    register_again = await client.post(
        "/auth/register",
        json={
            "email": alice.email,
            "username": alice.username,
            "password": alice.password,
            "password_confirm": alice.password,
        },
    )
    assert register_again.status == 202, await register_again.text()
    # The answer is the same for a taken email: that the email was freed shows in the login.
    assert await password_works(db, auth_service, alice.email, alice.password)


@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("PATCH", {"full_name": "pwned"}), ("DELETE", None)]
)
async def test_users_cannot_read_or_change_each_other(
    client: Any, alice: Account, bob: Account, method: str, body: Any
) -> None:
    response = await client.request(method, f"/users/{bob.id}", json=body, headers=alice.headers)
    await refused(response, 403, "insufficient_role")
    bobs = await (await client.get("/users/me", headers=bob.headers)).json()
    assert bobs["full_name"] is None and bobs["is_active"] is True


async def test_users_cannot_see_each_others_tasks(
    client: Any, alice: Account, bob: Account, admin: Account
) -> None:
    created = await client.post("/tasks/example", json={"seconds": 0}, headers=bob.headers)
    assert created.status == 202
    task_id = (await created.json())["id"]
    await refused(await client.get(f"/tasks/{task_id}", headers=alice.headers), 404, "not_found")
    assert (await client.get(f"/tasks/{task_id}", headers=bob.headers)).status == 200
    assert (await client.get(f"/tasks/{task_id}", headers=admin.headers)).status == 200
