"""The consumer: one channel with a prefetch limit, a handler task per delivery (aiormq makes
one), manual ack after the job committed, dead-lettering for messages that can never succeed.

Stopping is graceful: cancel the consumers, let in-flight jobs finish (bounded by
WORKER_SHUTDOWN_TIMEOUT), then close. When the connection drops, in-flight jobs are
cancelled: they could not be acked anyway, and the broker redelivers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from typing import Any

import aiormq
import orjson
from opentelemetry import propagate, trace

from storage.db import DatabaseUnavailable
from workers.amqp import AmqpConnection
from workers.jobs import Job, JobContext, PoisonMessage, registry
from workers.topology import CONCERNS

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("workers.worker")

RETRY_DELAY = 1.0
HEARTBEAT_INTERVAL = 5.0


def _tag(message: aiormq.abc.DeliveredMessage) -> int:
    tag = message.delivery_tag
    assert tag is not None  # always set on a consumed (not returned) message
    return tag


class Worker:
    def __init__(self, ctx: JobContext, amqp: AmqpConnection) -> None:
        self.ctx = ctx
        self.amqp = amqp
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.jobs: dict[tuple[str, str], Job] = registry()
        self.processed = 0
        self.dead_lettered = 0
        self._inflight: set[asyncio.Task[Any]] = set()
        self._channel: aiormq.abc.AbstractChannel | None = None
        self._consumer_tags: list[str] = []
        self._stopping = False
        self.started_at = time.time()
        amqp.on_connect(self._start_consuming)
        amqp.on_disconnect(self._abandon_inflight)

    async def _start_consuming(self, connection: aiormq.abc.AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=False)
        await channel.basic_qos(prefetch_count=self.ctx.settings.WORKER_PREFETCH)
        await self.ctx.topology.declare(channel)
        self._channel = channel
        self._consumer_tags = []
        if self._stopping:
            return
        for concern in CONCERNS:
            ok = await channel.basic_consume(
                self.ctx.topology.queue(concern), self._on_message, no_ack=False
            )
            if ok.consumer_tag:
                self._consumer_tags.append(ok.consumer_tag)

    def _abandon_inflight(self) -> None:
        self._channel = None
        for task in list(self._inflight):
            task.cancel()

    async def _on_message(self, message: aiormq.abc.DeliveredMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            await self.handle(message)
        finally:
            self._inflight.discard(task)

    async def handle(self, message: aiormq.abc.DeliveredMessage) -> None:
        concern = message.routing_key or "?"
        headers = dict(message.header.properties.headers or {})
        parent = propagate.extract({k: str(v) for k, v in headers.items()})
        with _tracer.start_as_current_span(
            f"{concern} process", context=parent, kind=trace.SpanKind.CONSUMER
        ) as span:
            span.set_attribute("messaging.system", "rabbitmq")
            span.set_attribute(
                "messaging.message.id", str(message.header.properties.message_id or "")
            )
            try:
                body, job = self._decode(concern, message.body)
                await job(self.ctx, body)
            except PoisonMessage as error:
                await self._dead_letter(message, str(error))
                return
            except DatabaseUnavailable as error:
                log.warning("database unavailable (%s); requeueing %s", error, concern)
                await asyncio.sleep(RETRY_DELAY)
                await message.channel.basic_nack(_tag(message), requeue=True)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.exception("job on %s failed", concern)
                await self._dead_letter(message, f"{type(error).__name__}: {error}")
                return
            await message.channel.basic_ack(_tag(message))
            self.processed += 1

    def _decode(self, concern: str, raw: bytes) -> tuple[dict[str, Any], Job]:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise PoisonMessage(f"body is not JSON: {error}") from None
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise PoisonMessage("body must be a JSON object with a string `type`")
        job = self.jobs.get((concern, body["type"]))
        if job is None:
            raise PoisonMessage(f"no job handles type {body['type']!r} on {concern}")
        return body, job

    async def _dead_letter(self, message: aiormq.abc.DeliveredMessage, reason: str) -> None:
        log.warning("dead-lettering message %s: %s", message.header.properties.message_id, reason)
        await message.channel.basic_reject(_tag(message), requeue=False)
        self.dead_lettered += 1

    async def stop(self) -> None:
        """Stop consuming, let in-flight jobs finish within the timeout, cancel the rest."""
        self._stopping = True
        channel = self._channel
        if channel is not None and not channel.is_closed:
            for tag in self._consumer_tags:
                with contextlib.suppress(Exception):
                    await channel.basic_cancel(tag)
        if self._inflight:
            log.info("waiting for %d in-flight jobs", len(self._inflight))
            _, pending = await asyncio.wait(
                set(self._inflight), timeout=self.ctx.settings.WORKER_SHUTDOWN_TIMEOUT
            )
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        await self.amqp.close()

    async def heartbeat(self) -> None:
        """Announce this worker in Redis so the server can report its last heartbeat."""
        key = f"{self.ctx.settings.REDIS_PREFIX}:workers:{self.worker_id}"
        while True:
            state = {
                "worker_id": self.worker_id,
                "pid": os.getpid(),
                "started_at": self.started_at,
                "at": time.time(),
                "processed": self.processed,
                "dead_lettered": self.dead_lettered,
                "connected": self.amqp.is_connected,
            }
            with contextlib.suppress(Exception):
                await self.ctx.redis.set(key, orjson.dumps(state), ex=int(HEARTBEAT_INTERVAL * 4))
            await asyncio.sleep(HEARTBEAT_INTERVAL)
