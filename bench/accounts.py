"""Credentials for scenarios whose endpoints need a user: when the server answers 401, a
throw-away account is registered and logged in through the public API (POST /auth/register,
POST /auth/login) and its bearer token is sent with every request. Against a server without
authentication nothing is registered. Scenarios that need an admin create a superuser with
the server's own CLI."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys

import aiohttp

from bench.harness import PROJECT_ROOT, Harness


class AccountError(RuntimeError):
    """The benchmark account could not be registered or logged in."""


async def _login(client: aiohttp.ClientSession, email: str, password: str) -> dict[str, str]:
    login = {"email": email, "password": password}
    async with client.post("/auth/login", json=login) as answer:
        if answer.status != 200:
            raise AccountError(f"POST /auth/login: HTTP {answer.status} {await answer.text()}")
        token = (await answer.json())["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def bench_user_headers(client: aiohttp.ClientSession) -> dict[str, str]:
    """Register a fresh `user`-role account and return its Authorization header."""
    name = f"bench{secrets.token_hex(6)}"
    password = secrets.token_urlsafe(18)
    account = {
        "email": f"{name}@example.org",
        "username": name,
        "password": password,
        "password_confirm": password,
    }
    async with client.post("/auth/register", json=account) as answer:
        if answer.status != 202:  # accepted: the same answer whether the email was taken
            raise AccountError(f"POST /auth/register: HTTP {answer.status} {await answer.text()}")
    return await _login(client, account["email"], password)


async def bench_admin_headers(harness: Harness, client: aiohttp.ClientSession) -> dict[str, str]:
    """A fresh superuser of the benchmark database, created as an operator would
    (`python -m server create-superuser`, the password in SUPERUSER_PASSWORD), logged in."""
    name = f"benchadmin{secrets.token_hex(5)}"
    email = f"{name}@example.org"
    password = secrets.token_urlsafe(18)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "server", "create-superuser", "--email", email, "--username", name],
        env=dict(harness.env, SUPERUSER_PASSWORD=password),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise AccountError(f"create-superuser failed: {(done.stderr or done.stdout)[-300:]}")
    return await _login(client, email, password)
