"""Accounts for a crowd of N clients, made the fast way and checked the production way: the
users and one live session each are written straight into the benchmark database (two
INSERT ... SELECT over generate_series; registering 100,000 accounts through the API would
hash 100,000 passwords), and each gets an access token signed with the server's own key
(bench/harness.py gives the server the same settings), exactly what POST /auth/login would
return. The server checks them as it checks any: signature, expiry, the session and the
account through its Redis cache or PostgreSQL. The accounts are deleted afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

from bench.crowd import Client
from bench.harness import Harness
from server.auth.service import AuthService
from server.kernel.principal import Role

C = TypeVar("C", bound=Client)

# Nobody logs in with it: a placeholder that no password verifies against.
NO_PASSWORD = "!bench-crowd-no-login"


@dataclass(frozen=True)
class Account:
    user_id: int
    token: str


@dataclass(frozen=True)
class Crowd:
    tag: str
    accounts: list[Account]


def _insert(harness: Harness, tag: str, count: int) -> list[tuple[int, uuid.UUID]]:
    with harness.db() as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO users (email, username, password_hash, role)"
            " SELECT 'crowd-' || %(tag)s || '-' || i || '@example.org',"
            "        'crowd_' || %(tag)s || '_' || i, %(hash)s, 'user'"
            " FROM generate_series(1, %(count)s) AS i",
            {"tag": tag, "hash": NO_PASSWORD, "count": count},
        )
        cur.execute(
            "INSERT INTO sessions (id, user_id, expires_at, user_agent)"
            " SELECT gen_random_uuid(), id, now() + interval '1 day', 'bench crowd'"
            " FROM users WHERE email LIKE %(pattern)s"
            " RETURNING user_id, id",
            {"pattern": f"crowd-{tag}-%"},
        )
        rows: list[tuple[int, uuid.UUID]] = [
            (int(user_id), uuid.UUID(str(session_id))) for user_id, session_id in cur.fetchall()
        ]
    rows.sort()
    return rows


async def create(harness: Harness, count: int) -> Crowd:
    tag = secrets.token_hex(4)
    rows = await asyncio.to_thread(_insert, harness, tag, count)
    service = AuthService(harness.settings)
    accounts = [
        Account(user_id, service.access_token(user_id, Role.user, session_id))
        for user_id, session_id in rows
    ]
    return Crowd(tag, accounts)


def _delete(harness: Harness, tag: str) -> None:
    with harness.db() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM users WHERE email LIKE %s", (f"crowd-{tag}-%",))


async def delete(harness: Harness, crowd: Crowd) -> None:
    await asyncio.to_thread(_delete, harness, crowd.tag)


@contextlib.asynccontextmanager
async def clients(
    harness: Harness, count: int, make: Callable[[int, Account], C]
) -> AsyncIterator[list[C]]:
    """`count` accounts and a client made for each (not connected yet); at the end every
    client is dropped and the accounts are deleted."""
    crowd = await create(harness, count)
    made = [make(index, account) for index, account in enumerate(crowd.accounts)]
    try:
        yield made
    finally:
        for client in made:
            client.drop()
        await delete(harness, crowd)
