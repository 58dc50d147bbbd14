"""Helpers shared by the messaging tests (no tests here: only `test_messaging_*` files may be
added, so the helpers live in one of them)."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import aiormq
import orjson

from storage.db import transaction
from tests.support.accounts import Account
from tests.support.processes import dies_with_parent
from tests.support.waiting import eventually
from workers import dlq
from workers.broker.topology import Topology

ROOT = Path(__file__).resolve().parents[2]

PATHS = {
    "user_notification": "/messaging/user-notification",
    "admin_notification": "/messaging/admin-notification",
    "order_processing": "/messaging/order-processing",
    "system_event": "/messaging/system-event",
}


def marker(prefix: str = "m") -> str:
    """A unique text to find this test's rows by."""
    return f"{prefix}-{uuid.uuid4().hex}"


def valid_body(kind: str, user_id: int, text: str | None = None) -> dict[str, Any]:
    text = text or marker(kind)
    return {
        "user_notification": {"user_id": user_id, "message": text},
        "admin_notification": {"message": text, "severity": "warning"},
        "order_processing": {"order_id": new_order_id(), "user_id": user_id, "action": "created"},
        "system_event": {"event_name": text, "event_data": {"n": 1}},
    }[kind]


def new_order_id() -> int:
    return uuid.uuid4().int >> 66  # 62 bits: unique enough, within BIGINT


async def send(
    client: Any,
    kind: str,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    account: Account | None = None,
    key: str | None = None,
) -> Any:
    """POST a message; returns the response."""
    all_headers = dict(account.headers if account else {})
    all_headers.update(headers or {})
    if key is not None:
        all_headers["Idempotency-Key"] = key
    return await client.post(PATHS[kind], json=body, headers=all_headers)


async def accepted(client: Any, kind: str, body: Any, **kwargs: Any) -> uuid.UUID:
    """POST a message that must be accepted; returns its message id."""
    response = await send(client, kind, body, **kwargs)
    assert response.status == 202, await response.text()
    answer = await response.json()
    assert answer["duplicate"] is False
    return uuid.UUID(answer["message_id"])


async def count(db: Any, sql: str, **params: Any) -> int:
    async with transaction(db) as conn:
        return int(await conn.fetch_value(sql, params))


async def rows(db: Any, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with transaction(db) as conn:
        return await conn.fetch_all(sql, params)


async def processed(db: Any, *message_ids: uuid.UUID) -> int:
    return await count(
        db,
        "SELECT count(*) FROM processed_messages WHERE message_id = ANY(%(ids)s::uuid[])",
        ids=[str(m) for m in message_ids],
    )


async def wait_processed(db: Any, *message_ids: uuid.UUID, timeout: float = 15) -> None:
    async def done() -> bool:
        return await processed(db, *message_ids) == len(message_ids)

    await eventually(done, timeout=timeout)


async def notifications_of(db: Any, message_id: uuid.UUID) -> list[dict[str, Any]]:
    return await rows(
        db, "SELECT * FROM notifications WHERE message_id = %(id)s ORDER BY id", id=str(message_id)
    )


async def publish_raw(
    settings: Any, body: bytes, message_id: str | None, routing_key: str = "notifications.user"
) -> None:
    """Straight to RabbitMQ, bypassing the outbox (as a foreign publisher or a redelivery)."""
    connection = await aiormq.connect(settings.RABBITMQ_URL.get_secret_value())
    try:
        channel = await connection.channel()
        topology = Topology.from_settings(settings)
        await topology.declare(channel)
        await channel.basic_publish(
            body,
            exchange=topology.exchange,
            routing_key=routing_key,
            properties=aiormq.spec.Basic.Properties(delivery_mode=2, message_id=message_id),
        )
    finally:
        await connection.close()


def user_notification_body(user_id: int, text: str) -> bytes:
    return orjson.dumps(
        {"type": "user_notification", "payload": {"user_id": user_id, "message": text}}
    )


async def wait_dead(
    settings: Any, message_id: uuid.UUID | str, concern: str, timeout: float = 15
) -> dict[str, Any]:
    """The dead letter with this message id, once it is there."""

    async def found() -> dict[str, Any] | None:
        return await dlq.show(settings, str(message_id), concern)

    return await eventually(found, timeout=timeout, interval=0.2)


def cli_env(settings: Any) -> dict[str, str]:
    return {
        **os.environ,
        "POSTGRES_DB": settings.POSTGRES_DB,
        "REDIS_PREFIX": settings.REDIS_PREFIX,
        "AMQP_PREFIX": settings.AMQP_PREFIX,
        "RETRY_DELAYS": settings.RETRY_DELAYS,
        "LOG_LEVEL": "WARNING",
    }


async def workers_cli(settings: Any, *args: str) -> tuple[int, str]:
    """`python -m workers ARGS` with these settings; returns the exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers",
        *args,
        cwd=ROOT,
        preexec_fn=dies_with_parent,
        env=cli_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def count_by(db: Any, table: str, column: str, value: Any) -> int:
    """Rows of `table` whose `column` equals `value` (table and column are test constants)."""
    return await count(db, f"SELECT count(*) FROM {table} WHERE {column} = %(v)s", v=_param(value))


def _param(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value
