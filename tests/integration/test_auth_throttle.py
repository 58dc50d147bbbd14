"""Failed-login throttling that slows attackers without locking the owner out: progressive
waits per (account, address) pair, a limit per address, and a limit per account that spares
the addresses the account signed in from; sessions (/auth/refresh) are never throttled, and
unknown accounts are throttled exactly like real ones. The client address comes from
X-Forwarded-For only from TRUSTED_PROXIES (127.0.0.1 here); these tests set it to play several
addresses.

Every test runs its own app on a Redis prefix of its own, so its counters start at zero and
never lock out the shared test client."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from server.kernel.settings import Settings, settings_key
from storage.redis import redis_key
from tests.integration.test_auth_login import isolated_client
from tests.integration.test_http_errors import assert_envelope
from tests.support.accounts import Account, create_account

WINDOW = 600


@pytest.fixture
async def account(db: Any, auth_service: Any) -> Account:
    return await create_account(db, auth_service)


async def throttled_client(aiohttp_client: Any, settings: Settings, **overrides: Any) -> Any:
    values: dict[str, Any] = {"TRUSTED_PROXIES": "127.0.0.1", "LOGIN_THROTTLE_WINDOW": WINDOW}
    return await isolated_client(aiohttp_client, settings, **(values | overrides))


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


async def assert_throttled(response: Any, most: int = WINDOW) -> int:
    assert response.status == 429, await response.text()
    assert_envelope(await response.json(), "rate_limited")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= most
    assert "tokens" not in await response.text()
    return retry_after


async def assert_signed_in(response: Any) -> dict[str, Any]:
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def end_waits(client: Any) -> None:
    """Let time pass for every pair's wait (instead of sleeping through it)."""
    redis = client.app[redis_key]
    waits = f"{client.app[settings_key].REDIS_PREFIX}:auth:login:wait:*"
    found = [key async for key in redis.scan_iter(match=waits)]
    if found:
        await redis.delete(*found)


def ghost() -> str:
    return f"ghost-{uuid.uuid4().hex[:10]}@example.org"


async def test_an_attacker_at_one_address_cannot_lock_the_owner_out(
    aiohttp_client: Any, settings: Settings, account: Account
) -> None:
    """Defaults: the attacker is slowed down and then stopped; the owner, from an address
    never seen before, signs in, and the session they already hold keeps refreshing."""
    client = await throttled_client(aiohttp_client, settings)
    session = await assert_signed_in(
        await log_in(client, account.email, account.password, forwarded_for="192.0.2.1")
    )
    refused = 0
    for attempt in range(40):
        response = await log_in(
            client, account.email, f"guess {attempt}", forwarded_for="198.51.100.66"
        )
        assert response.status in (401, 429), await response.text()
        refused += response.status == 429
        if response.status == 429:
            await end_waits(client)  # the attacker waits out every delay, and goes on
    assert refused > 0
    await assert_throttled(
        await log_in(client, account.email, account.password, forwarded_for="198.51.100.66")
    )
    await assert_signed_in(
        await log_in(client, account.email, account.password, forwarded_for="203.0.113.5")
    )
    refreshed = await client.post(
        "/auth/refresh", json={"refresh_token": session["tokens"]["refresh_token"]}
    )
    assert refreshed.status == 200, await refreshed.text()


async def test_the_pair_waits_longer_after_each_failure(
    aiohttp_client: Any, settings: Settings, account: Account, db: Any, auth_service: Any
) -> None:
    client = await throttled_client(
        aiohttp_client,
        settings,
        LOGIN_FREE_FAILURES_PER_PAIR=2,
        LOGIN_PAIR_FIRST_DELAY=1,
        LOGIN_PAIR_MAX_DELAY=8,
    )
    here = "198.51.100.20"
    await fail(client, account.email, 3, forwarded_for=here)  # 2 free, the 3rd costs a wait
    # The right password is not even checked while the pair waits.
    assert (
        await assert_throttled(
            await log_in(client, account.email, account.password, forwarded_for=here)
        )
        == 1
    )
    await asyncio.sleep(1.1)  # a real wait ends by itself
    waits = []
    for _ in range(4):
        await fail(client, account.email, 1, forwarded_for=here)
        waits.append(
            await assert_throttled(await log_in(client, account.email, "x" * 9, forwarded_for=here))
        )
        await end_waits(client)
    assert waits == [2, 4, 8, 8]

    other = await create_account(db, auth_service)  # the same address, another account
    await assert_signed_in(await log_in(client, other.email, other.password, forwarded_for=here))
    await assert_signed_in(  # the same account, another address
        await log_in(client, account.email, account.password, forwarded_for="192.0.2.30")
    )


async def test_success_starts_the_pair_over(
    aiohttp_client: Any, settings: Settings, account: Account
) -> None:
    client = await throttled_client(aiohttp_client, settings, LOGIN_FREE_FAILURES_PER_PAIR=3)
    for _ in range(3):  # 2 failures + 1 success, three times: 6 failures in all, no wait
        await fail(client, account.email, 2, forwarded_for="192.0.2.40")
        await assert_signed_in(
            await log_in(client, account.email, account.password, forwarded_for="192.0.2.40")
        )


async def test_the_owner_at_a_known_address_gets_in_while_the_account_is_under_attack(
    aiohttp_client: Any, settings: Settings, account: Account
) -> None:
    """Failures from many addresses close the account to addresses it never signed in
    from; the owner's known address, and the owner's session, still work."""
    client = await throttled_client(
        aiohttp_client,
        settings,
        LOGIN_ACCOUNT_FAILURES_KNOWN_ONLY=4,
        LOGIN_FREE_FAILURES_PER_PAIR=100,
    )
    home = "192.0.2.50"
    session = await assert_signed_in(
        await log_in(client, account.email, account.password, forwarded_for=home)
    )
    for bot in range(4):  # a botnet: one failure from each of four addresses
        await fail(client, account.username, 1, forwarded_for=f"198.51.100.{bot + 1}")
    stranger = await log_in(client, account.email, account.password, forwarded_for="203.0.113.9")
    await assert_throttled(stranger)
    await assert_signed_in(
        await log_in(client, account.email, account.password, forwarded_for=home)
    )
    refreshed = await client.post(
        "/auth/refresh", json={"refresh_token": session["tokens"]["refresh_token"]}
    )
    assert refreshed.status == 200, await refreshed.text()


async def attack_story(client: Any, login: str, pair: str, stranger: str) -> list[Any]:
    """What an attacker sees (the request id aside): a pair that fails until it must wait,
    then another address once the account is over its limit."""
    seen = []
    attempts = [(f"guess {attempt}", pair) for attempt in range(4)] + [("guess", stranger)]
    for password, address in attempts:
        response = await log_in(client, login, password, forwarded_for=address)
        error = (await response.json())["error"]
        error.pop("request_id", None)
        retry_after = response.headers.get("Retry-After")  # the account's: to ~10 s
        seen.append((response.status, error, retry_after and round(int(retry_after), -1)))
    return seen


async def test_unknown_accounts_are_throttled_like_real_ones(
    aiohttp_client: Any, settings: Settings, account: Account
) -> None:
    client = await throttled_client(
        aiohttp_client,
        settings,
        LOGIN_FREE_FAILURES_PER_PAIR=2,
        LOGIN_PAIR_FIRST_DELAY=60,
        LOGIN_ACCOUNT_FAILURES_KNOWN_ONLY=3,
    )
    real = await attack_story(client, account.email, "198.51.100.1", "198.51.100.2")
    unknown = await attack_story(client, ghost(), "198.51.100.3", "198.51.100.4")
    assert real == unknown
    assert [status for status, *_ in real] == [401, 401, 401, 429, 429]


async def test_account_limit_covers_both_of_its_logins(
    aiohttp_client: Any, settings: Settings, account: Account
) -> None:
    client = await throttled_client(aiohttp_client, settings, LOGIN_ACCOUNT_FAILURES_KNOWN_ONLY=3)
    for attempt in range(3):
        response = await client.post(
            "/auth/login",
            json={"username": account.username, "password": f"wrong {attempt}"},
            headers={"X-Forwarded-For": f"198.51.100.{attempt + 1}"},
        )
        assert response.status == 401
    await assert_throttled(
        await log_in(client, account.email.upper(), account.password, forwarded_for="192.0.2.9")
    )


async def test_address_is_limited_over_all_accounts(
    aiohttp_client: Any, settings: Settings, account: Account
) -> None:
    client = await throttled_client(aiohttp_client, settings, LOGIN_MAX_FAILURES_PER_ADDRESS=4)
    for _ in range(4):  # one failure each for four different accounts
        await fail(client, ghost(), 1, forwarded_for="198.51.100.9")
    await assert_throttled(
        await log_in(client, account.email, account.password, forwarded_for="198.51.100.9")
    )


async def test_forwarded_for_is_ignored_unless_trusted(
    aiohttp_client: Any, settings: Settings, account: Account
) -> None:
    client = await throttled_client(
        aiohttp_client, settings, LOGIN_MAX_FAILURES_PER_ADDRESS=4, TRUSTED_PROXIES=""
    )
    for index in range(4):  # each claims another address; all come from 127.0.0.1
        await fail(client, ghost(), 1, forwarded_for=f"198.51.100.{index + 1}")
    response = await log_in(client, account.email, account.password, forwarded_for="192.0.2.77")
    await assert_throttled(response)


async def test_forwarded_for_is_the_address_when_trusted(
    aiohttp_client: Any, settings: Settings, account: Account
) -> None:
    # Two proxies of ours (10.0.0.1 in front of the test client's 127.0.0.1): the client is
    # the nearest hop that is not one of them.
    client = await throttled_client(
        aiohttp_client,
        settings,
        LOGIN_MAX_FAILURES_PER_ADDRESS=4,
        TRUSTED_PROXIES="127.0.0.1,10.0.0.0/8",
    )
    for _ in range(4):
        await fail(client, ghost(), 1, forwarded_for="198.51.100.9, 10.0.0.1")
    blocked = await log_in(client, account.email, account.password, forwarded_for="198.51.100.9")
    await assert_throttled(blocked)

    response = await log_in(client, account.email, account.password, forwarded_for="192.0.2.10")
    token = (await assert_signed_in(response))["tokens"]["access_token"]
    sessions = await (
        await client.get("/auth/sessions", headers={"Authorization": f"Bearer {token}"})
    ).json()
    assert [s["ip"] for s in sessions if s["current"]] == ["192.0.2.10"]
