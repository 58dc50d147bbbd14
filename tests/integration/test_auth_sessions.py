"""Sessions: POST /auth/refresh rotates the refresh token and treats a spent one presented
again as theft (the whole session ends at once); logout, logout-all and DELETE
/auth/sessions/{id} end sessions immediately, not at access-token expiry; GET /auth/sessions
lists the live ones."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.test_http_errors import assert_envelope
from tests.support.accounts import Account, log_in


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def me_status(client: Any, access_token: str) -> int:
    response = await client.get("/users/me", headers=bearer(access_token))
    return int(response.status)


async def refresh(client: Any, refresh_token: str) -> Any:
    return await client.post("/auth/refresh", json={"refresh_token": refresh_token})


async def second_session(client: Any, account: Account) -> Account:
    """Another login of the same account (a second device)."""
    other = Account(account.id, account.email, account.username, account.password, account.role)
    return await log_in(client, other)


async def assert_session_ended(client: Any, access_token: str) -> None:
    response = await client.get("/users/me", headers=bearer(access_token))
    assert response.status == 401, await response.text()
    assert_envelope(await response.json(), "session_revoked")


async def test_refresh_returns_a_new_working_pair(client: Any, alice: Account) -> None:
    response = await refresh(client, alice.refresh_token)
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    pair = await response.json()
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] > 0
    assert pair["refresh_token"] != alice.refresh_token
    assert pair["access_token"] != alice.access_token
    assert await me_status(client, pair["access_token"]) == 200
    again = await refresh(client, pair["refresh_token"])
    assert again.status == 200  # the new refresh token works in turn


async def test_reusing_a_spent_refresh_token_ends_the_whole_session(
    client: Any, alice: Account
) -> None:
    first_access, spent = alice.access_token, alice.refresh_token
    newest = await (await refresh(client, spent)).json()
    assert await me_status(client, newest["access_token"]) == 200

    replay = await refresh(client, spent)
    assert replay.status == 401
    assert_envelope(await replay.json(), "token_reused")

    stolen = await refresh(client, newest["refresh_token"])
    assert stolen.status == 401
    assert_envelope(await stolen.json(), "invalid_token")
    await assert_session_ended(client, newest["access_token"])
    await assert_session_ended(client, first_access)


async def test_reuse_ends_only_that_session(client: Any, alice: Account) -> None:
    other_device = await second_session(client, alice)
    spent = alice.refresh_token
    await refresh(client, spent)
    assert (await refresh(client, spent)).status == 401
    assert await me_status(client, other_device.access_token) == 200
    assert (await refresh(client, other_device.refresh_token)).status == 200


async def test_unknown_refresh_token_is_401(client: Any) -> None:
    response = await refresh(client, "not-a-refresh-token")
    assert response.status == 401
    assert_envelope(await response.json(), "invalid_token")


async def test_access_token_is_not_a_refresh_token(client: Any, alice: Account) -> None:
    response = await refresh(client, alice.access_token)
    assert response.status == 401
    assert_envelope(await response.json(), "invalid_token")
    assert await me_status(client, alice.access_token) == 200


async def test_logout_ends_that_session_at_once(client: Any, alice: Account) -> None:
    other_device = await second_session(client, alice)
    response = await client.post(
        "/auth/logout", json={"refresh_token": alice.refresh_token}, headers=alice.headers
    )
    assert response.status == 204
    await assert_session_ended(client, alice.access_token)
    assert (await refresh(client, alice.refresh_token)).status == 401
    assert await me_status(client, other_device.access_token) == 200


async def test_logout_with_someone_elses_refresh_token_ends_nothing(
    client: Any, alice: Account, bob: Account
) -> None:
    response = await client.post(
        "/auth/logout", json={"refresh_token": bob.refresh_token}, headers=alice.headers
    )
    assert response.status == 204
    assert await me_status(client, bob.access_token) == 200
    assert await me_status(client, alice.access_token) == 200


async def test_logout_needs_authentication(client: Any, alice: Account) -> None:
    response = await client.post("/auth/logout", json={"refresh_token": alice.refresh_token})
    assert response.status == 401
    assert await me_status(client, alice.access_token) == 200


async def test_logout_all_ends_every_session(client: Any, alice: Account, bob: Account) -> None:
    other_device = await second_session(client, alice)
    response = await client.post("/auth/logout-all", headers=alice.headers)
    assert response.status == 204
    await assert_session_ended(client, alice.access_token)
    await assert_session_ended(client, other_device.access_token)
    assert (await refresh(client, other_device.refresh_token)).status == 401
    assert await me_status(client, bob.access_token) == 200


async def test_sessions_are_listed_with_their_details(client: Any, alice: Account) -> None:
    phone = Account(alice.id, alice.email, alice.username, alice.password, alice.role)
    login = await client.post(
        "/auth/login",
        json={"email": alice.email, "password": alice.password},
        headers={"User-Agent": "PhoneApp/2.1"},
    )
    phone.access_token = (await login.json())["tokens"]["access_token"]

    response = await client.get("/auth/sessions", headers=phone.headers)
    assert response.status == 200
    listed = await response.json()
    assert len(listed) == 2
    for session in listed:
        assert {"id", "created_at", "last_used_at", "user_agent", "ip", "current"} <= set(session)
        uuid.UUID(session["id"])
        assert session["ip"] == "127.0.0.1"
        assert session["created_at"] and session["last_used_at"]
    current = [s for s in listed if s["current"]]
    assert [s["user_agent"] for s in current] == ["PhoneApp/2.1"]

    from_the_other = await (await client.get("/auth/sessions", headers=alice.headers)).json()
    assert [s["id"] for s in from_the_other if s["current"]] == [
        s["id"] for s in listed if not s["current"]
    ]


async def test_ending_one_session_by_id(client: Any, alice: Account) -> None:
    other_device = await second_session(client, alice)
    listed = await (await client.get("/auth/sessions", headers=alice.headers)).json()
    (other_id,) = [s["id"] for s in listed if not s["current"]]

    response = await client.delete(f"/auth/sessions/{other_id}", headers=alice.headers)
    assert response.status == 204
    await assert_session_ended(client, other_device.access_token)
    assert await me_status(client, alice.access_token) == 200
    remaining = await (await client.get("/auth/sessions", headers=alice.headers)).json()
    assert [s["id"] for s in remaining] == [s["id"] for s in listed if s["current"]]

    again = await client.delete(f"/auth/sessions/{other_id}", headers=alice.headers)
    assert again.status == 404


async def test_someone_elses_session_id_is_404(client: Any, alice: Account, bob: Account) -> None:
    bobs = await (await client.get("/auth/sessions", headers=bob.headers)).json()
    response = await client.delete(f"/auth/sessions/{bobs[0]['id']}", headers=alice.headers)
    assert response.status == 404
    assert_envelope(await response.json(), "not_found")
    assert await me_status(client, bob.access_token) == 200
    unknown = await client.delete(f"/auth/sessions/{uuid.uuid4()}", headers=alice.headers)
    assert unknown.status == 404
