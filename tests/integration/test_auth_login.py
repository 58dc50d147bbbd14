"""POST /auth/login, with JSON (email or username) and with the OAuth2 password form: the
answer carries the user and a bearer token pair (also as top-level OAuth2 fields). Unknown
accounts and wrong passwords are indistinguishable, in the answer and in its timing.

Failed logins count against the client address (127.0.0.1 for every test client), so tests
that fail logins run an app on a Redis prefix of its own (`isolated_client`)."""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

import pytest

from server.app import create_app
from server.kernel.settings import Settings
from storage.redis import redis_key
from tests.conftest import make_settings
from tests.integration.test_http_errors import assert_envelope
from tests.support.accounts import Account, create_account


async def isolated_client(aiohttp_client: Any, base: Settings, **overrides: Any) -> Any:
    """The app on a Redis key prefix of its own (throttle counters, caches, tickets), so its
    failed logins cannot lock other tests out; its keys are removed when it shuts down."""
    prefix = f"{base.REDIS_PREFIX}.{uuid.uuid4().hex[:8]}"
    app = create_app(make_settings(POSTGRES_DB=base.POSTGRES_DB, REDIS_PREFIX=prefix, **overrides))

    async def forget_keys(app: Any) -> None:
        redis = app[redis_key]
        found = [key async for key in redis.scan_iter(match=f"{prefix}:*")]
        if found:
            await redis.delete(*found)

    app.on_shutdown.append(forget_keys)
    return await aiohttp_client(app)


@pytest.fixture
async def account(db: Any, auth_service: Any) -> Account:
    return await create_account(db, auth_service)


async def check_login_result(client: Any, response: Any, account: Account, settings: Any) -> None:
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert body["user"]["id"] == account.id
    assert body["user"]["email"] == account.email
    assert "password_hash" not in body["user"]
    tokens = body["tokens"]
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == settings.ACCESS_TOKEN_TTL
    assert tokens["access_token"] and tokens["refresh_token"]
    assert tokens["access_token"] != tokens["refresh_token"]
    for name in ("access_token", "refresh_token", "token_type", "expires_in"):
        assert body[name] == tokens[name]
    me = await client.get(
        "/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status == 200
    assert (await me.json())["id"] == account.id


async def test_login_with_email(client: Any, account: Account, settings: Any) -> None:
    response = await client.post(
        "/auth/login", json={"email": account.email, "password": account.password}
    )
    await check_login_result(client, response, account, settings)


async def test_login_with_username_ignoring_case(
    client: Any, account: Account, settings: Any
) -> None:
    response = await client.post(
        "/auth/login",
        json={"username": account.username.upper(), "password": account.password},
    )
    await check_login_result(client, response, account, settings)


@pytest.mark.parametrize("identifier", ["username", "email"])
async def test_login_with_the_oauth2_password_form(
    client: Any, account: Account, settings: Any, identifier: str
) -> None:
    response = await client.post(
        "/auth/login",
        data={
            "grant_type": "password",
            "username": getattr(account, identifier),
            "password": account.password,
            "scope": "",
        },
    )
    assert response.request_info.headers["Content-Type"] == "application/x-www-form-urlencoded"
    await check_login_result(client, response, account, settings)


async def test_every_login_starts_its_own_session(client: Any, account: Account) -> None:
    tokens = []
    for _ in range(2):
        response = await client.post(
            "/auth/login", json={"email": account.email, "password": account.password}
        )
        tokens.append((await response.json())["tokens"])
    assert tokens[0]["access_token"] != tokens[1]["access_token"]
    assert tokens[0]["refresh_token"] != tokens[1]["refresh_token"]


@pytest.mark.parametrize(
    "body",
    [{"password": "whatever it is"}, {"email": "a@example.org"}, {}, {"email": None}],
)
async def test_incomplete_login_is_422(client: Any, body: dict[str, Any]) -> None:
    response = await client.post("/auth/login", json=body)
    assert response.status == 422
    assert_envelope(await response.json(), "validation_error")


async def test_unknown_account_and_wrong_password_look_the_same(
    aiohttp_client: Any, settings: Settings, account: Account
) -> None:
    client = await isolated_client(aiohttp_client, settings)
    answers = []
    for body in (
        {"email": f"nobody-{uuid.uuid4().hex[:8]}@example.org", "password": account.password},
        {"email": account.email, "password": account.password + "!"},
        {"username": f"nobody{uuid.uuid4().hex[:8]}", "password": account.password},
        {"username": account.username, "password": "not the password"},
    ):
        response = await client.post("/auth/login", json=body)
        assert response.status == 401, await response.text()
        error = assert_envelope(await response.json(), "invalid_credentials")
        answers.append((response.status, error["code"], error["message"], error.get("details")))
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert len(set(answers)) == 1, answers


async def test_unknown_account_and_wrong_password_take_comparable_time(
    aiohttp_client: Any, settings: Settings, db: Any, auth_service: Any
) -> None:
    client = await isolated_client(
        aiohttp_client,
        settings,
        LOGIN_FREE_FAILURES_PER_PAIR=100,
        LOGIN_ACCOUNT_FAILURES_KNOWN_ONLY=1000,
        LOGIN_MAX_FAILURES_PER_ADDRESS=1000,
    )
    accounts = [await create_account(db, auth_service) for _ in range(3)]

    async def attempt(body: dict[str, str]) -> float:
        started = time.perf_counter()
        response = await client.post("/auth/login", json=body)
        elapsed = time.perf_counter() - started
        assert response.status == 401
        return elapsed

    def unknown() -> dict[str, str]:
        return {"email": f"ghost-{uuid.uuid4().hex[:10]}@example.org", "password": "guess 1234x"}

    def wrong(index: int) -> dict[str, str]:
        return {"email": accounts[index % 3].email, "password": f"guess {index}x wrong"}

    await attempt(unknown())  # warm up both paths (the dummy hash is built on first use)
    await attempt(wrong(99))
    unknown_times, wrong_times = [], []
    for index in range(5):
        unknown_times.append(await attempt(unknown()))
        wrong_times.append(await attempt(wrong(index)))
    ratio = statistics.median(unknown_times) / statistics.median(wrong_times)
    assert 0.5 <= ratio <= 2, (unknown_times, wrong_times)


async def test_deactivated_account_with_the_right_password_looks_like_a_wrong_password(
    aiohttp_client: Any, settings: Settings, db: Any, auth_service: Any
) -> None:
    """The right password of a deactivated account is not confirmed: the answer is the one
    a wrong password gets (401, same code and message), so it tells an attacker nothing."""
    client = await isolated_client(aiohttp_client, settings)
    account = await create_account(db, auth_service)
    async with db.acquire() as raw, raw.cursor() as cursor:
        await cursor.execute("UPDATE users SET is_active = false WHERE id = %s", (account.id,))
    answers = []
    for password in (account.password, account.password + "!"):
        response = await client.post(
            "/auth/login", json={"email": account.email, "password": password}
        )
        assert response.status == 401, await response.text()
        error = assert_envelope(await response.json(), "invalid_credentials")
        answers.append((error["code"], error["message"], error.get("details")))
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert answers[0] == answers[1], answers
    async with db.acquire() as raw, raw.cursor() as cursor:
        await cursor.execute("SELECT last_login_at FROM users WHERE id = %s", (account.id,))
        assert (await cursor.fetchone())[0] is None
