"""Passwords: the policy's verdicts, argon2id round trips, upgrades when the parameters rise,
and that hashing never blocks the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from server.kernel.security.passwords import PasswordHasher, PasswordPolicy

CONTEXT = ("alice.liddell@example.com", "AliceInChains")
PASSPHRASE_200 = ("correct horse battery staple " * 7)[:200]


@pytest.fixture(scope="module")
def policy() -> PasswordPolicy:
    return PasswordPolicy()


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher()


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        pytest.param("", "at least 8 characters", id="empty"),
        pytest.param("a1b2c3d", "at least 8 characters", id="7 characters"),
        pytest.param("x" * 1025, "at most 1024 characters", id="1025 characters"),
        pytest.param("password", "too common", id="password"),
        pytest.param("iloveyou", "too common", id="iloveyou"),
        pytest.param("Password123!", "too common", id="Password123!"),
        pytest.param("QWERTYUIOP", "too common", id="common, other case"),
        pytest.param("12345678", "too common", id="digit run"),
        pytest.param("aliceinchains", "email address or username", id="username, other case"),
        pytest.param("Alice.Liddell@Example.com", "email address or username", id="email"),
    ],
)
def test_policy_names_the_problem(policy: PasswordPolicy, password: str, problem: str) -> None:
    problems = policy.check_policy(password, context_words=CONTEXT)
    assert len(problems) == 1
    assert problem in problems[0]


def test_short_and_common_reports_both(policy: PasswordPolicy) -> None:
    assert len(policy.check_policy("123456")) == 2


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("SecurePass123!", id="seed example"),
        pytest.param("lowercaseonlybutlong", id="no composition rules"),
        pytest.param(PASSPHRASE_200, id="200-character passphrase"),
        pytest.param("x" * 1024, id="1024 characters"),
        pytest.param("pässwörd-für-ünïcode", id="unicode"),
        pytest.param("alice.liddell", id="only part of the email"),
    ],
)
def test_policy_accepts(policy: PasswordPolicy, password: str) -> None:
    assert policy.check_policy(password, context_words=CONTEXT) == []


def test_empty_context_words_are_ignored() -> None:
    policy = PasswordPolicy(common_passwords=frozenset())
    assert policy.check_policy("a-fine-password", context_words=("", "bob")) == []


def test_policy_uses_the_list_it_is_given() -> None:
    policy = PasswordPolicy(common_passwords=frozenset({"house-style-2030"}))
    assert policy.check_policy("House-Style-2030") != []
    assert policy.check_policy("password1") == []


def test_policy_refuses_impossible_limits() -> None:
    with pytest.raises(ValueError, match="min_length"):
        PasswordPolicy(min_length=20, max_length=10, common_passwords=frozenset())


async def test_hash_verify_round_trip(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("SecurePass123!")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert "SecurePass123!" not in hashed
    assert await hasher.verify("SecurePass123!", hashed) == (True, None)
    assert await hasher.verify("SecurePass123?", hashed) == (False, None)
    assert await hasher.hash("SecurePass123!") != hashed  # a fresh salt each time


async def test_verify_offers_an_upgraded_hash_when_parameters_rise() -> None:
    weaker, stronger = PasswordHasher(time_cost=2), PasswordHasher(time_cost=3)
    old_hash = await weaker.hash("SecurePass123!")
    valid, new_hash = await stronger.verify("SecurePass123!", old_hash)
    assert valid
    assert new_hash is not None
    assert new_hash.startswith("$argon2id$v=19$m=19456,t=3,p=1$")
    assert await stronger.verify("SecurePass123!", new_hash) == (True, None)
    assert await stronger.verify("wrong password", old_hash) == (False, None)


@pytest.mark.parametrize("stored", ["", "not-a-hash", "$2b$12$invalidbcrypt", "$argon2id$v=19$"])
async def test_unusable_stored_hash_fails_closed(hasher: PasswordHasher, stored: str) -> None:
    assert await hasher.verify("SecurePass123!", stored) == (False, None)


async def test_oversized_password_fails_closed(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("SecurePass123!")
    assert await hasher.verify("x" * 100_000, hashed) == (False, None)


@pytest.mark.parametrize(
    "parameters",
    [{"memory_cost": 4096}, {"time_cost": 1}, {"parallelism": 0}],
)
def test_hasher_refuses_parameters_below_owasp(parameters: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="OWASP"):
        PasswordHasher(**parameters)


async def ticks_during(work: Callable[[], Awaitable[object]]) -> int:
    """How often a 1 ms ticker task ran on the loop while `work` was awaited."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0)  # let the ticker start
        ticks = 0
        await work()
        return ticks
    finally:
        task.cancel()


async def test_hash_and_verify_leave_the_event_loop_free(hasher: PasswordHasher) -> None:
    # A hash on the loop itself would let the ticker run at most once.
    hashed = await hasher.hash("SecurePass123!")
    assert await ticks_during(lambda: hasher.hash("SecurePass123!")) >= 3
    assert await ticks_during(lambda: hasher.verify("SecurePass123!", hashed)) >= 3
    assert await ticks_during(lambda: hasher.dummy_verify("SecurePass123!")) >= 3


async def test_dummy_verify_runs_a_real_argon2_verification_with_the_same_parameters() -> None:
    """An unknown login must cost what a wrong password costs: one argon2id verification
    with the hasher's own parameters (checked by what is verified, not by a stopwatch)."""
    hasher = PasswordHasher()
    verified: list[str] = []
    original = hasher._context.verify_and_update

    def spy(password: str, hashed: str) -> tuple[bool, str | None]:
        verified.append(hashed)
        return original(password, hashed)

    hasher._context.verify_and_update = spy
    for guess in ("first", "second", "third"):
        await hasher.dummy_verify(guess)
    assert len(verified) >= 2  # the first call may build the dummy hash instead
    assert all(h.startswith("$argon2id$v=19$m=19456,t=2,p=1$") for h in verified)
