"""`python -m workers dlq list|show|requeue|purge`: look into and repair the dead-letter queues.

    list     [--queue C] [--limit N]           counts, and the first N messages of each queue
    show     MESSAGE_ID [--queue C]            one message: headers (x-error, x-attempts) and body
    requeue  (MESSAGE_ID | --all) [--queue C]  back to the work queue with a fresh attempt count
    purge    [--queue C] --yes                 delete dead letters for good

Reading uses basic.get without acknowledging, then puts every message back, so looking
never loses anything. Requeueing republishes with confirms before removing the dead copy.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiormq
from pamqp.commands import Basic

from server.kernel.settings import Settings
from workers.broker.amqp import persistent_copy
from workers.broker.topology import CONCERNS, Topology

DROPPED_HEADERS = (
    "x-attempt",
    "x-error",
    "x-attempts",
    "x-dead-at",
    "x-last-error",
    "retry-delay",
    "x-death",
)


@asynccontextmanager
async def _channel(settings: Settings) -> AsyncIterator[aiormq.abc.AbstractChannel]:
    connection = await aiormq.connect(settings.RABBITMQ_URL.get_secret_value())
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


def add_arguments(commands: Any) -> None:
    dlq = commands.add_parser("dlq", help="inspect and repair dead-letter queues")
    actions = dlq.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list")
    listing.add_argument("--queue", choices=list(CONCERNS))
    listing.add_argument("--limit", type=int, default=20)
    showing = actions.add_parser("show")
    showing.add_argument("message_id")
    showing.add_argument("--queue", choices=list(CONCERNS))
    requeueing = actions.add_parser("requeue")
    which = requeueing.add_mutually_exclusive_group(required=True)
    which.add_argument("message_id", nargs="?")
    which.add_argument("--all", action="store_true")
    requeueing.add_argument("--queue", choices=list(CONCERNS))
    purging = actions.add_parser("purge")
    purging.add_argument("--queue", choices=list(CONCERNS))
    purging.add_argument("--yes", action="store_true", help="really delete")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        print(json.dumps(await list_dead(settings, args.queue, args.limit), indent=2, default=str))
    elif args.action == "show":
        found = await show(settings, args.message_id, args.queue)
        if found is None:
            print(f"no dead letter with message id {args.message_id}")
            return 1
        print(json.dumps(found, indent=2, default=str))
    elif args.action == "requeue":
        moved = await requeue(settings, None if args.all else args.message_id, args.queue)
        print(f"requeued {moved} message(s)")
        return 0 if moved else 1
    else:
        if not args.yes:
            print("purge deletes dead letters for good: add --yes")
            return 2
        print(f"purged {await purge(settings, args.queue)} message(s)")
    return 0
