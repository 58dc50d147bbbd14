"""This node's connections, by client id and by user, and what reaches them as a whole:
shutdown, revocations (close what an auth event names) and direct messages."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson

from server.hub.connection import Connection
from server.hub.protocol import Close


class Registry:
    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}
        self.by_user: dict[int, set[Connection]] = {}
        self.opened: dict[str, int] = {}  # connections ever registered, by transport
        self.slow_consumer_closes = 0  # for the metrics (server/hub/metrics.py)
        self._empty = asyncio.Event()

    def add(self, connection: Connection) -> None:
        self.connections[connection.client_id] = connection
        self.by_user.setdefault(connection.user_id, set()).add(connection)
        self.opened[connection.kind] = self.opened.get(connection.kind, 0) + 1

    def remove(self, connection: Connection) -> None:
        known = self.connections.pop(connection.client_id, None) is not None
        if known and connection.close_code is Close.SLOW_CONSUMER:
            self.slow_consumer_closes += 1
        if not self.connections:
            self._empty.set()
        users = self.by_user.get(connection.user_id)
        if users is not None:
            users.discard(connection)
            if not users:
                del self.by_user[connection.user_id]

    async def close_all(self, code: Close, reason: str) -> None:
        """Tell every client to go away, give them a moment to close."""
        for connection in list(self.connections.values()):
            connection.close_soon(code, reason)
        if self.connections:
            self._empty.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._empty.wait(), 3)

    def revoke(self, event: dict[str, Any]) -> None:
        """Close what a revocation names: given sessions, given API keys, or (neither given)
        every connection of the user."""
        sessions = set(event.get("session_ids") or ())
        keys = set(event.get("api_key_ids") or ())
        everything = not sessions and not keys
        for connection in list(self.by_user.get(int(event.get("user_id", 0)), ())):
            session = connection.principal.session_id
            key = connection.principal.api_key_id
            if (
                everything
                or (session is not None and str(session) in sessions)
                or (key is not None and str(key) in keys)
            ):
                connection.close_soon(
                    Close.SESSION_REVOKED, f"session revoked: {event.get('reason')}"
                )

    def direct(self, envelope: dict[str, Any]) -> None:
        """A frame for one connection, if it is here and the sender owns it, is an admin,
        or is the server."""
        connection = self.connections.get(envelope["client_id"])
        sender = envelope["sender_id"]
        if connection is not None and (
            envelope["admin"] or sender is None or sender == connection.user_id
        ):
            connection.send(orjson.dumps(envelope["frame"]))
