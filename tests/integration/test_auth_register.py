"""POST /auth/register: a new account with the `user` role, answered 202 with one body
whether the email was free or already has an account (whose owner is notified instead), in
comparable time; taken usernames (ignoring case) are 409 whatever the email, malformed input
422, weak passwords 422 `weak_password` without composition rules; registrations are limited
per client address (429). Also the seed's Python API (AuthService.register_user / login)."""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

import pytest

from server.auth.registration import NOTICE_KIND, NOTICE_TITLE
from server.auth.schemas import REGISTRATION_ACCEPTED, UserCreate
from server.auth.service import AuthService
from server.kernel.settings import Settings
from storage.db import transaction
from tests.integration.test_auth_login import isolated_client
from tests.integration.test_http_errors import assert_envelope
from tests.integration.test_realtime_channels import publications, subscribe
from tests.integration.test_realtime_ws import connect
from tests.support.accounts import Account

PASSWORD = "violet staple orbit lantern"
OTHER_PASSWORD = "amber quarry tulip anchor"
ACCEPTED = {"detail": REGISTRATION_ACCEPTED}


def new_user(**changes: Any) -> dict[str, Any]:
    name = f"r{uuid.uuid4().hex[:10]}"
    body = {
        "email": f"{name}@example.org",
        "username": name,
        "password": PASSWORD,
        "password_confirm": PASSWORD,
    }
    return body | changes


def other_password(**changes: Any) -> dict[str, Any]:
    return new_user(password=OTHER_PASSWORD, password_confirm=OTHER_PASSWORD, **changes)


async def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    return assert_envelope(await response.json(), code)


async def accepted(response: Any) -> None:
    assert response.status == 202, await response.text()
    assert await response.json() == ACCEPTED


async def log_in(client: Any, login: str, password: str) -> Any:
    return await client.post("/auth/login", json={"email": login, "password": password})


async def test_register_creates_a_plain_user_who_signs_in(client: Any) -> None:
    body = new_user(full_name="Ada Lovelace")
    response = await client.post("/auth/register", json=body)
    await accepted(response)
    text = await response.text()
    assert PASSWORD not in text and "password" not in text and "argon2" not in text

    login = await log_in(client, body["email"], body["password"])
    assert login.status == 200, await login.text()
    user = (await login.json())["user"]
    assert (user["email"], user["username"]) == (body["email"], body["username"])
    assert (user["full_name"], user["role"], user["is_active"]) == ("Ada Lovelace", "user", True)


async def test_a_taken_email_gets_the_answer_a_free_one_gets(client: Any) -> None:
    """Same status, same body, same headers that matter: registering tells nothing about
    who has an account. The second registration creates nothing."""
    first = new_user()
    free = await client.post("/auth/register", json=first)
    clash = other_password(email=first["email"].upper())
    taken = await client.post("/auth/register", json=clash)
    for response in (free, taken):
        await accepted(response)
    assert free.headers["Content-Type"] == taken.headers["Content-Type"]
    assert free.headers["Content-Length"] == taken.headers["Content-Length"]

    assert (await log_in(client, first["email"], PASSWORD)).status == 200
    assert (await log_in(client, first["email"], OTHER_PASSWORD)).status == 401
    assert (await log_in(client, clash["username"], OTHER_PASSWORD)).status == 401
    # The username the refused registration asked for is still free.
    await accepted(await client.post("/auth/register", json=new_user(username=clash["username"])))


async def test_the_owner_of_a_taken_email_is_notified(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    await subscribe(ws, f"user:{alice.id}")
    attempt = other_password(email=alice.email)
    await accepted(await client.post("/auth/register", json=attempt))

    [live] = await publications(ws, 1)
    await ws.close()
    page = await (await client.get("/users/me/notifications", headers=alice.headers)).json()
    [notice] = [item for item in page["items"] if item["title"] == NOTICE_TITLE]
    assert live["data"]["kind"] == "notification"
    assert (live["data"]["id"], live["data"]["title"]) == (notice["id"], NOTICE_TITLE)
    assert notice["level"] == "warning"
    assert notice["data"]["kind"] == NOTICE_KIND
    assert notice["data"]["address"] == "127.0.0.1"
    assert notice["data"]["at"] and "127.0.0.1" in notice["body"]
    assert OTHER_PASSWORD not in repr(notice) and attempt["username"] not in repr(notice)


@pytest.mark.parametrize("email_taken", [False, True])
async def test_taken_username_ignoring_case_is_409_whatever_the_email(
    client: Any, email_taken: bool
) -> None:
    """Usernames are public handles: a clash is told, and the same way for any email."""
    first = new_user()
    await accepted(await client.post("/auth/register", json=first))
    email = first["email"] if email_taken else new_user()["email"]
    clash = new_user(username=first["username"].upper(), email=email)
    error = await refused(await client.post("/auth/register", json=clash), 409, "conflict")
    assert (error["message"], error["details"]) == (
        "this username is already taken",
        {"field": "username"},
    )


async def test_taken_and_free_emails_take_comparable_time(client: Any, alice: Account) -> None:
    """Both hash the password; the taken one stores a notice instead of an account. Taken
    and free attempts alternate so that a busy machine slows both alike."""

    async def timed(body: dict[str, Any]) -> float:
        started = time.perf_counter()
        response = await client.post("/auth/register", json=body)
        elapsed = time.perf_counter() - started
        await accepted(response)
        return elapsed

    await timed(new_user())  # warm up both paths
    await timed(other_password(email=alice.email))
    taken_times, free_times = [], []
    for _ in range(8):
        taken_times.append(await timed(other_password(email=alice.email)))
        free_times.append(await timed(new_user()))
    ratio = statistics.mean(taken_times) / statistics.mean(free_times)
    assert 0.5 <= ratio <= 2, (taken_times, free_times)


async def test_registrations_are_limited_per_address(
    aiohttp_client: Any, settings: Settings, alice: Account
) -> None:
    client = await isolated_client(
        aiohttp_client,
        settings,
        REGISTER_MAX_PER_ADDRESS=2,
        REGISTER_THROTTLE_WINDOW=600,
        TRUSTED_PROXIES="127.0.0.1",
    )
    here = {"X-Forwarded-For": "198.51.100.7"}
    await accepted(await client.post("/auth/register", json=new_user(), headers=here))
    taken = other_password(email=alice.email)
    await accepted(await client.post("/auth/register", json=taken, headers=here))
    for body in (new_user(), taken):  # over the limit: free and taken emails alike
        response = await client.post("/auth/register", json=body, headers=here)
        await refused(response, 429, "rate_limited")
        assert 1 <= int(response.headers["Retry-After"]) <= 600
    elsewhere = {"X-Forwarded-For": "192.0.2.8"}
    await accepted(await client.post("/auth/register", json=new_user(), headers=elsewhere))


async def test_register_cannot_pick_its_own_role(client: Any) -> None:
    response = await client.post("/auth/register", json=new_user(role="superuser"))
    error = await refused(response, 422, "validation_error")
    assert ["role"] in [item["loc"] for item in error["details"]]


async def test_mismatched_password_confirmation_is_422(client: Any) -> None:
    body = new_user(password_confirm=PASSWORD + " but different")
    error = await refused(await client.post("/auth/register", json=body), 422, "validation_error")
    assert "password_confirm" in error["details"][0]["message"]
    assert PASSWORD not in repr(error)


@pytest.mark.parametrize(
    "email", ["not-an-email", "two@@example.org", "@example.org", "x@", "", "a b@example.org"]
)
async def test_bad_email_is_422(client: Any, email: str) -> None:
    response = await client.post("/auth/register", json=new_user(email=email))
    error = await refused(response, 422, "validation_error")
    assert error["details"][0]["loc"] == ["email"]


@pytest.mark.parametrize(
    "username", ["ab", "x" * 33, "has space", "semi;colon", "slash/name", "<script>", "émile"]
)
async def test_bad_username_is_422(client: Any, username: str) -> None:
    response = await client.post("/auth/register", json=new_user(username=username))
    error = await refused(response, 422, "validation_error")
    assert error["details"][0]["loc"] == ["username"]


async def test_unknown_fields_are_422(client: Any) -> None:
    response = await client.post("/auth/register", json=new_user(nickname="typo"))
    error = await refused(response, 422, "validation_error")
    assert error["details"][0]["loc"] == ["nickname"]


@pytest.mark.parametrize(
    "weak",
    [
        pytest.param(lambda user: "password123", id="common"),
        pytest.param(lambda user: "PASSWORD123", id="common-any-case"),
        pytest.param(lambda user: "qwertyuiop", id="keyboard-walk"),
        pytest.param(lambda user: user["username"], id="equals-username"),
        pytest.param(lambda user: user["email"].upper(), id="equals-email"),
    ],
)
async def test_weak_passwords_are_422_weak_password(client: Any, weak: Any) -> None:
    body = new_user()
    password = weak(body)
    body |= {"password": password, "password_confirm": password}
    response = await client.post("/auth/register", json=body)
    error = await refused(response, 422, "weak_password")
    assert error["details"][0]["loc"] == ["password"]
    assert password not in await response.text()
    retry = new_user(email=body["email"])
    await accepted(await client.post("/auth/register", json=retry))
    login = await log_in(client, body["email"], retry["password"])
    assert login.status == 200, "the refused registration must not have kept the email"


async def test_a_too_short_password_is_refused_by_the_schema(client: Any) -> None:
    """The minimum length is in the OpenAPI document, so it is a validation error."""
    response = await client.post(
        "/auth/register", json=new_user(password="short1!", password_confirm="short1!")
    )
    error = await refused(response, 422, "validation_error")
    assert error["details"][0]["loc"] == ["password"]
    assert "short1!" not in await response.text()


async def test_a_200_character_passphrase_works(client: Any) -> None:
    passphrase = ("the quick brown fox jumps over a lazy dog " * 5)[:200]
    assert len(passphrase) == 200
    body = new_user(password=passphrase, password_confirm=passphrase)
    await accepted(await client.post("/auth/register", json=body))
    login = await log_in(client, body["email"], passphrase)
    assert login.status == 200


async def test_password_over_1024_characters_is_422(client: Any) -> None:
    long = "a fairly long passphrase " * 50
    response = await client.post(
        "/auth/register", json=new_user(password=long, password_confirm=long)
    )
    await refused(response, 422, "validation_error")


async def test_seed_service_api_registers_and_logs_in(client: Any, db: Any, settings: Any) -> None:
    name = f"seed{uuid.uuid4().hex[:8]}"
    async with transaction(db) as conn:
        user = await AuthService(settings).register_user(
            conn,
            user_data=UserCreate(
                email=f"{name}@example.org",
                username=name,
                password=PASSWORD,
                password_confirm=PASSWORD,
            ),
        )
    async with transaction(db) as conn:
        result = await AuthService(settings).login(
            conn, email=f"{name}@example.org", password=PASSWORD
        )
    assert result.user.id == user.id
    assert result.tokens.token_type == "bearer"

    me = await client.get(
        "/users/me", headers={"Authorization": f"Bearer {result.tokens.access_token}"}
    )
    assert me.status == 200
    assert (await me.json())["username"] == name

    async with transaction(db) as conn:
        by_username = await AuthService(settings).login(conn, username=name, password=PASSWORD)
    assert by_username.user.id == user.id
