"""Accepting a message: `accept()` records a message and its outbox entry in the caller's
transaction; `Acceptor` does the same for a server, many concurrent requests in one
statement (group commit). Kinds and payload models: workers/broker/kinds.py.

A message for a user (a user notification, an order) is refused with UnknownUser when that
user does not exist, in the statement that would write it: the worker could never process
it. (A user deleted after that is the worker's permanent error: dead-lettered at once.)"""

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
from workers.broker.payloads import OrderProcessing, Payload, UserNotification
from workers.broker.topology import Topology
from workers.messaging import outbox


class MessageTooLarge(Exception):
    """The encoded message would exceed what the worker accepts (MAX_MESSAGE_BYTES)."""


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different request."""


class UnknownUser(Exception):
    """The user the message is for does not exist: nothing was stored."""

    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id} does not exist")
        self.user_id = user_id


def target_user(payload: Payload) -> int | None:
    """The user a message is for, who must exist when it is accepted (None: no one)."""
    if isinstance(payload, UserNotification | OrderProcessing):
        return payload.user_id
    return None


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
        user_id=target_user(payload),
    )


async def resolve(conn: Connection, new: messages.NewMessage, created: bool | None) -> Accepted:
    """The answer for a prepared message once the statement ran: itself, or (its idempotency
    key was used before) the first message with that key, if the request was the same.
    Raises UnknownUser when the statement refused it for that reason (`created` None)."""
    if created is None:
        assert new.user_id is not None
        raise UnknownUser(new.user_id)
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
        self.accepted = 0  # new messages recorded (not idempotent repeats), for the metrics
        self._batches: Coalescer[messages.NewMessage, bool | None] = Coalescer(
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
            self.accepted += 1
            return Accepted(new.id, created=True)
        if created is None:
            assert new.user_id is not None
            raise UnknownUser(new.user_id)
        async with connect(self._pool) as conn:
            return await resolve(conn, new, created)

    async def _write(self, batch: list[messages.NewMessage]) -> list[bool | None]:
        async with connect(self._pool) as conn:
            return await messages.accept_many(conn, batch)


acceptor_key: web.AppKey[Acceptor] = web.AppKey("acceptor", Acceptor)
