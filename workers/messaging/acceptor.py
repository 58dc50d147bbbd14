"""Accepting a message: `accept()` records a message and its outbox entry in the caller's
transaction; `Acceptor` does the same for a server, many concurrent requests in one
statement (group commit). Kinds and payload models: workers/broker/kinds.py."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import orjson
from aiohttp import web

from server.kernel.errors import IntegrityViolation, InvalidData
from storage import messages
from storage.coalescer import Coalescer
from storage.db import Connection, Pool, connect
from workers.broker.kinds import MAX_MESSAGE_BYTES
from workers.broker.payloads import Payload
from workers.broker.topology import Topology
from workers.messaging import outbox


class MessageTooLarge(Exception):
    """The encoded message would exceed what the worker accepts (MAX_MESSAGE_BYTES)."""


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different request."""


@dataclass(frozen=True)
class Accepted:
    message_id: uuid.UUID
    created: bool  # False: the idempotency key matched an earlier message


def request_hash(kind: str, payload_json: bytes) -> str:
    """What makes two requests with one Idempotency-Key the same request."""
    return hashlib.sha256(kind.encode() + b"\0" + payload_json).hexdigest()


def prepare(
    topology: Topology,
    kind: str,
    payload: Payload,
    *,
    created_by: int | None,
    idempotency_key: str | None = None,
) -> messages.NewMessage:
    """The message and its outbox entry, encoded, with a new id and the current trace
    context (carried to the worker). Raises MessageTooLarge."""
    data_json = orjson.dumps(payload.model_dump(mode="json"))
    entry = outbox.entry(topology, kind, {"payload": orjson.Fragment(data_json)}, uuid.uuid4())
    if len(entry.body) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(
            f"the message is {len(entry.body)} bytes; at most {MAX_MESSAGE_BYTES}"
        )
    return messages.NewMessage(
        kind=kind,
        payload_json=data_json.decode(),
        created_by=created_by,
        idempotency_key=idempotency_key,
        request_hash=request_hash(kind, data_json),
        entry=entry,
    )


async def resolve(conn: Connection, new: messages.NewMessage, created: bool) -> Accepted:
    """The answer for a prepared message once the statement ran: itself, or (its idempotency
    key was used before) the first message with that key, if the request was the same."""
    if created:
        return Accepted(new.id, created=True)
    assert new.idempotency_key is not None
    first = await messages.find_by_key(conn, new.created_by, new.idempotency_key)
    assert first is not None
    if first["request_hash"] != new.request_hash:
        raise IdempotencyConflict("this Idempotency-Key was used for a different request")
    return Accepted(first["id"], created=False)


async def accept(
    conn: Connection,
    topology: Topology,
    kind: str,
    payload: Payload,
    *,
    created_by: int | None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Record one message and its outbox row in the caller's connection (one statement, so
    atomic with or without a surrounding transaction)."""
    new = prepare(topology, kind, payload, created_by=created_by, idempotency_key=idempotency_key)
    (created,) = await messages.accept_many(conn, [new])
    return await resolve(conn, new, created)


class Acceptor:
    """Accepts messages for a server: concurrent requests share one statement and one
    commit (group commit, storage/coalescer.py), so accepting costs the database little per
    message under load and adds no wait when idle."""

    def __init__(self, pool: Pool, topology: Topology) -> None:
        self._pool = pool
        self._topology = topology
        self._batches: Coalescer[messages.NewMessage, bool] = Coalescer(
            self._write, name="message-acceptor", isolate=(IntegrityViolation, InvalidData)
        )

    async def accept(
        self,
        kind: str,
        payload: Payload,
        *,
        created_by: int | None,
        idempotency_key: str | None = None,
    ) -> Accepted:
        new = prepare(
            self._topology, kind, payload, created_by=created_by, idempotency_key=idempotency_key
        )
        created = await self._batches.submit(new)
        if created:
            return Accepted(new.id, created=True)
        async with connect(self._pool) as conn:
            return await resolve(conn, new, created)

    async def _write(self, batch: list[messages.NewMessage]) -> list[bool]:
        async with connect(self._pool) as conn:
            return await messages.accept_many(conn, batch)


acceptor_key: web.AppKey[Acceptor] = web.AppKey("acceptor", Acceptor)
