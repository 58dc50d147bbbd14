"""The dead-letter queues, looked into and repaired (`python -m workers dlq`, workers/dlq.py).

Reading uses basic.get without acknowledging, then puts every message back, so looking
never loses anything. Requeueing republishes with confirms before removing the dead copy,
without the headers of the failed attempts (workers/broker/redelivery.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiormq
from pamqp.commands import Basic

from server.kernel.settings import Settings
from workers.broker.amqp import connect_any, persistent_copy
from workers.broker.kinds import CONCERNS
from workers.broker.redelivery import HEADERS
from workers.broker.topology import Topology

DROPPED_HEADERS = (*HEADERS, "x-death")  # x-death: RabbitMQ's own record of dead-lettering


@asynccontextmanager
async def _channel(settings: Settings) -> AsyncIterator[aiormq.abc.AbstractChannel]:
    connection = await connect_any(settings.RABBITMQ_URL.get_secret_value())
    try:
        channel = await connection.channel(publisher_confirms=True)
        await Topology.from_settings(settings).declare(channel)
        yield channel
    finally:
        await connection.close()


async def _take(
    channel: aiormq.abc.AbstractChannel, queue: str, limit: int
) -> list[aiormq.abc.DeliveredMessage]:
    taken: list[aiormq.abc.DeliveredMessage] = []
    while len(taken) < limit:
        message = await channel.basic_get(queue, no_ack=False, timeout=10)
        if isinstance(message.delivery, Basic.GetEmpty):
            break
        taken.append(message)
    return taken


async def _put_back(
    channel: aiormq.abc.AbstractChannel, taken: list[aiormq.abc.DeliveredMessage]
) -> None:
    for message in taken:
        assert message.delivery_tag is not None
        await channel.basic_nack(message.delivery_tag, requeue=True)


def _summary(message: aiormq.abc.DeliveredMessage) -> dict[str, Any]:
    properties = message.header.properties
    headers = dict(properties.headers or {})
    try:
        kind = json.loads(message.body).get("type")
    except (ValueError, AttributeError):
        kind = None
    return {
        "message_id": properties.message_id,
        "type": kind,
        "error": _text(headers.get("x-error")),
        "attempts": headers.get("x-attempts"),
        "dead_at": headers.get("x-dead-at"),
        "size": len(message.body),
    }


def _text(value: Any) -> Any:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _concerns(queue: str | None) -> list[str]:
    if queue is None:
        return list(CONCERNS)
    if queue not in CONCERNS:
        raise SystemExit(f"unknown queue {queue!r}; one of: {', '.join(CONCERNS)}")
    return [queue]


async def list_dead(settings: Settings, queue: str | None, limit: int) -> dict[str, Any]:
    topology = Topology.from_settings(settings)
    report: dict[str, Any] = {}
    async with _channel(settings) as channel:
        for concern in _concerns(queue):
            name = topology.dead_queue(concern)
            declared = await channel.queue_declare(name, passive=True)
            taken = await _take(channel, name, limit)
            report[concern] = {
                "count": declared.message_count,
                "messages": [_summary(m) for m in taken],
            }
            await _put_back(channel, taken)
    return report


async def show(settings: Settings, message_id: str, queue: str | None) -> dict[str, Any] | None:
    topology = Topology.from_settings(settings)
    async with _channel(settings) as channel:
        for concern in _concerns(queue):
            taken = await _take(channel, topology.dead_queue(concern), 100_000)
            try:
                for message in taken:
                    if message.header.properties.message_id == message_id:
                        headers = {
                            k: _text(v)
                            for k, v in (message.header.properties.headers or {}).items()
                        }
                        return {
                            "queue": concern,
                            "headers": headers,
                            "body": message.body.decode(errors="replace"),
                        }
            finally:
                await _put_back(channel, taken)
    return None


async def requeue(settings: Settings, message_id: str | None, queue: str | None) -> int:
    """Move dead letters (one, or all) back to their work queue; returns how many."""
    topology = Topology.from_settings(settings)
    moved = 0
    async with _channel(settings) as channel:
        for concern in _concerns(queue):
            taken = await _take(channel, topology.dead_queue(concern), 100_000)
            keep = []
            for message in taken:
                properties = message.header.properties
                if message_id is not None and properties.message_id != message_id:
                    keep.append(message)
                    continue
                headers = {
                    k: v for k, v in (properties.headers or {}).items() if k not in DROPPED_HEADERS
                }
                await channel.basic_publish(
                    message.body,
                    exchange=topology.exchange,
                    routing_key=concern,
                    mandatory=True,
                    properties=persistent_copy(message, headers),
                )
                assert message.delivery_tag is not None
                await channel.basic_ack(message.delivery_tag)
                moved += 1
            await _put_back(channel, keep)
    return moved


async def purge(settings: Settings, queue: str | None) -> int:
    topology = Topology.from_settings(settings)
    purged = 0
    async with _channel(settings) as channel:
        for concern in _concerns(queue):
            result = await channel.queue_purge(topology.dead_queue(concern))
            purged += int(result.message_count or 0)
    return purged
