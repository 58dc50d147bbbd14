"""Credentials for scenarios whose endpoints need a user: when the server answers 401, a
throw-away account is registered and logged in through the public API (POST /auth/register,
POST /auth/login) and its bearer token is sent with every request. Against a server without
authentication nothing is registered."""

from __future__ import annotations

import secrets

import aiohttp


class AccountError(RuntimeError):
    """The benchmark account could not be registered or logged in."""


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
        if answer.status != 201:
            raise AccountError(f"POST /auth/register: HTTP {answer.status} {await answer.text()}")
    login = {"email": account["email"], "password": password}
    async with client.post("/auth/login", json=login) as answer:
        if answer.status != 200:
            raise AccountError(f"POST /auth/login: HTTP {answer.status} {await answer.text()}")
        token = (await answer.json())["access_token"]
    return {"Authorization": f"Bearer {token}"}
