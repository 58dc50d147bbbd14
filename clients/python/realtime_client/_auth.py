"""Credentials for the realtime endpoints, shared by the WebSocket and SSE clients.

The server accepts (in this order) `X-API-Key: <key>`, `Authorization: Bearer <token>` and,
for clients that cannot set headers, a single-use `?ticket=` (POST /auth/ws-ticket). Each
may be given as a string or as a coroutine function returning a fresh one, which is called
before every (re)connection: needed for tickets (single-use) and for expiring tokens.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from realtime_client.errors import RealtimeError

Credential = str | Callable[[], Awaitable[str]] | None

# Statuses worth no retry: the request itself is wrong or not allowed.
FATAL_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 422})


async def resolve(value: Credential) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return await value()


async def credentials(
    token: Credential, api_key: Credential, ticket: Credential
) -> tuple[dict[str, str], dict[str, str]]:
    """The headers and query parameters that authenticate one connection attempt."""
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    token_value, key_value, ticket_value = (
        await resolve(token),
        await resolve(api_key),
        await resolve(ticket),
    )
    if token_value:
        headers["Authorization"] = f"Bearer {token_value}"
    if key_value:
        headers["X-API-Key"] = key_value
    if ticket_value:
        query["ticket"] = ticket_value
    return headers, query


def http_error(status: int, body: str) -> RealtimeError:
    """The server's JSON error envelope `{"error": {"code", "message", ...}}` as an error."""
    try:
        envelope: Any = json.loads(body)
        error = envelope["error"]
        return RealtimeError(
            str(error["code"]), str(error["message"]), status, error.get("details")
        )
    except (ValueError, KeyError, TypeError):
        return RealtimeError(f"http_{status}", body[:200] or f"HTTP {status}", status)


def status_error(status: int) -> RealtimeError:
    """A refused WebSocket handshake (aiohttp does not keep the body)."""
    code = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(status, f"http_{status}")
    return RealtimeError(code, f"the server refused the connection (HTTP {status})", status)
