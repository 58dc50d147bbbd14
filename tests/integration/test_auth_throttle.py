"""Failed-login throttling: after LOGIN_MAX_FAILURES_PER_ACCOUNT failures an account gets 429
with Retry-After, even with the right password; LOGIN_MAX_FAILURES_PER_ADDRESS does the same
per client address, which comes from X-Forwarded-For only when TRUST_FORWARDED_FOR is set; a
successful login resets the account's count.

Every test runs its own app on a Redis prefix of its own, so its counters start at zero and
never lock out the shared test client."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from server.kernel.settings import Settings
from tests.integration.test_auth_login import isolated_client
from tests.integration.test_http_errors import assert_envelope
from tests.support.accounts import Account, create_account


@pytest.fixture
async def account(db: Any, auth_service: Any) -> Account:
    return await create_account(db, auth_service)


async def log_in(
    client: Any, login: str, password: str, *, forwarded_for: str | None = None
) -> Any:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await client.post(
        "/auth/login", json={"email": login, "password": password}, headers=headers
    )


async def fail(client: Any, login: str, times: int, *, forwarded_for: str | None = None) -> None:
    for attempt in range(times):
        response = await log_in(client, login, f"wrong {attempt}", forwarded_for=forwarded_for)
        assert response.status == 401, f"attempt {attempt + 1}: {await response.text()}"


async def assert_throttled(response: Any, window: int) -> None:
    assert response.status == 429, await response.text()
    assert_envelope(await response.json(), "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= window
    assert "tokens" not in await response.text()


def ghost() -> str:
    return f"ghost-{uuid.uuid4().hex[:10]}@example.org"


async def test_account_is_locked_after_its_failures_even_with_the_right_password(
    aiohttp_client: Any, settings: Settings, account: Account, db: Any, auth_service: Any
) -> None:
    client = await isolated_client(
        aiohttp_client, settings, LOGIN_MAX_FAILURES_PER_ACCOUNT=3, LOGIN_THROTTLE_WINDOW=600
    )
    await fail(client, account.email, 3)
    await assert_throttled(await log_in(client, account.email, account.password), 600)
    await assert_throttled(await log_in(client, account.email.upper(), account.password), 600)

    other = await create_account(db, auth_service)  # same address, another account: fine
    assert (await log_in(client, other.email, other.password)).status == 200


async def test_unknown_accounts_are_throttled_like_real_ones(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await isolated_client(aiohttp_client, settings, LOGIN_MAX_FAILURES_PER_ACCOUNT=3)
    login = ghost()
    await fail(client, login, 3)
    await assert_throttled(await log_in(client, login, "anything at all"), 900)


async def test_account_lock_covers_both_of_its_logins(
    aiohttp_client: Any, settings: Settings, account: Account
) -> None:
    client = await isolated_client(aiohttp_client, settings, LOGIN_MAX_FAILURES_PER_ACCOUNT=3)
    for attempt in range(3):
        response = await client.post(
            "/auth/login", json={"username": account.username, "password": f"wrong {attempt}"}
        )
        assert response.status == 401
    await assert_throttled(await log_in(client, account.email, account.password), 900)


async def test_success_resets_the_account_count(
    aiohttp_client: Any, settings: Settings, account: Account
) -> None:
    client = await isolated_client(aiohttp_client, settings, LOGIN_MAX_FAILURES_PER_ACCOUNT=3)
    for _ in range(3):  # 2 failures + 1 success, three times: 6 failures in all
        await fail(client, account.email, 2)
        assert (await log_in(client, account.email, account.password)).status == 200


async def test_address_is_locked_after_its_failures(
    aiohttp_client: Any, settings: Settings, account: Account
) -> None:
    client = await isolated_client(
        aiohttp_client,
        settings,
        LOGIN_MAX_FAILURES_PER_ACCOUNT=100,
        LOGIN_MAX_FAILURES_PER_ADDRESS=4,
    )
    for _ in range(4):  # one failure each for four different accounts
        await fail(client, ghost(), 1)
    await assert_throttled(await log_in(client, account.email, account.password), 900)


async def test_forwarded_for_is_ignored_unless_trusted(
    aiohttp_client: Any, settings: Settings, account: Account
) -> None:
    client = await isolated_client(
        aiohttp_client,
        settings,
        LOGIN_MAX_FAILURES_PER_ACCOUNT=100,
        LOGIN_MAX_FAILURES_PER_ADDRESS=4,
        TRUST_FORWARDED_FOR=False,
    )
    for index in range(4):  # each claims another address; all come from 127.0.0.1
        await fail(client, ghost(), 1, forwarded_for=f"198.51.100.{index + 1}")
    response = await log_in(client, account.email, account.password, forwarded_for="192.0.2.77")
    await assert_throttled(response, 900)


async def test_forwarded_for_is_the_address_when_trusted(
    aiohttp_client: Any, settings: Settings, account: Account
) -> None:
    client = await isolated_client(
        aiohttp_client,
        settings,
        LOGIN_MAX_FAILURES_PER_ACCOUNT=100,
        LOGIN_MAX_FAILURES_PER_ADDRESS=4,
        TRUST_FORWARDED_FOR=True,
    )
    for _ in range(4):
        await fail(client, ghost(), 1, forwarded_for="198.51.100.9, 10.0.0.1")
    blocked = await log_in(client, account.email, account.password, forwarded_for="198.51.100.9")
    await assert_throttled(blocked, 900)

    response = await log_in(client, account.email, account.password, forwarded_for="192.0.2.10")
    assert response.status == 200, await response.text()
    token = (await response.json())["tokens"]["access_token"]
    sessions = await (
        await client.get("/auth/sessions", headers={"Authorization": f"Bearer {token}"})
    ).json()
    assert [s["ip"] for s in sessions if s["current"]] == ["192.0.2.10"]
