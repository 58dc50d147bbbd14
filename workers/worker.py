"""The consumer: one channel with a prefetch limit, a handler task per delivery (aiormq makes
one), manual ack after the job committed (the acks of jobs finishing together in one write).

A job that fails is retried later: the message is republished (with confirms,
workers/broker/redelivery.py) to the retry exchange with `x-attempt` + 1 and the error, then
acked; after WORKER_MAX_ATTEMPTS, or at once for a message that can never succeed (not
JSON, unknown type, invalid payload, too big, a value or a reference PostgreSQL refuses), it
goes to its dead-letter queue with `x-error` saying why, logged in one line without a
traceback. Either way the queue keeps moving. While PostgreSQL is unreachable messages are
requeued without counting attempts.

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
from opentelemetry import propagate, trace

from server.kernel import spans
from server.kernel.errors import DatabaseUnavailable
from storage import heartbeats, messages
from storage.coalescer import Coalescer
from storage.db import transaction
from workers.broker.amqp import AmqpConnection
from workers.broker.kinds import CONCERNS
from workers.broker.publishing import ack_many
from workers.broker.redelivery import Redelivery, attempt_of, one_line
from workers.jobs.context import Job, JobContext, JobMessage
from workers.jobs.failures import never_succeeds
from workers.jobs.registry import job_for, registry
from workers.messaging.metrics import JobDurations

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("workers.worker")

RETRY_DELAY = 1.0
HEARTBEAT_INTERVAL = 2.0  # a killed worker is seen absent within 4 of them (the TTL)


def _tag(message: aiormq.abc.DeliveredMessage) -> int:
    tag = message.delivery_tag
    assert tag is not None  # always set on a consumed (not returned) message
    return tag


def _message_id(message: aiormq.abc.DeliveredMessage) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(message.header.properties.message_id))
    except ValueError:
        return None


class Worker:
    def __init__(self, ctx: JobContext, amqp: AmqpConnection) -> None:
        self.ctx = ctx
        self.amqp = amqp
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.jobs: dict[str, Job] = registry()
        self.processed = 0
        self.retried = 0
        self.dead_lettered = 0
        self.durations = JobDurations()  # counters above and this: workers/process.py exports
        self._inflight: set[asyncio.Task[Any]] = set()
        self._channel: aiormq.abc.AbstractChannel | None = None
        self._redelivery = Redelivery(ctx.topology)
        self._consumer_tags: list[str] = []
        self._stopping = False
        self._changed = asyncio.Event()  # consuming started or stopped: heartbeat at once
        self.started_at = time.time()
        self._acks: Coalescer[aiormq.abc.DeliveredMessage, None] = Coalescer(
            self._ack_many, name="worker-acks"
        )
        amqp.on_connect(self._start_consuming)
        amqp.on_disconnect(self._abandon_inflight)

    async def _start_consuming(self, connection: aiormq.abc.AbstractConnection) -> None:
        await self._redelivery.open(connection)
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
        self._changed.set()

    def _abandon_inflight(self) -> None:
        self._channel = None
        self._changed.set()
        self._redelivery.forget()
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
        started = time.perf_counter()
        kind, outcome = await self._handle(message)
        self.durations.observe(kind, outcome, time.perf_counter() - started)

    async def _handle(self, message: aiormq.abc.DeliveredMessage) -> tuple[str, str]:
        """Run the message's job; its kind and what became of it (OUTCOMES)."""
        concern = message.routing_key or "?"
        headers = dict(message.header.properties.headers or {})
        attempt = attempt_of(headers)
        tracing = spans.installed()
        parent = propagate.extract({k: str(v) for k, v in headers.items()}) if tracing else None
        with spans.span(
            _tracer, f"{concern} process", context=parent, kind=trace.SpanKind.CONSUMER
        ) as span:
            if tracing:
                span.set_attribute("messaging.system", "rabbitmq")
                span.set_attribute(
                    "messaging.message.id", str(message.header.properties.message_id or "")
                )
                span.set_attribute("messaging.attempt", attempt)
            kind = concern  # until the body says which kind of message it is
            try:
                kind, body, job = job_for(self.jobs, concern, message.body)
                await job(self.ctx, JobMessage(concern, kind, body, _message_id(message), attempt))
            except DatabaseUnavailable as error:
                log.warning("database unavailable (%s); requeueing %s", error, concern)
                await asyncio.sleep(RETRY_DELAY)
                await message.channel.basic_nack(_tag(message), requeue=True)
                return kind, "requeued"
            except asyncio.CancelledError:
                raise
            except Exception as error:
                permanent = never_succeeds(error)
                if permanent is not None:
                    await self._give_up(message, concern, kind, attempt, permanent)
                    return kind, "dead_lettered"
                return kind, await self._failed(message, concern, kind, attempt, error)
            await self._ack(message)
            self.processed += 1
            return kind, "processed"

    async def _ack(self, message: aiormq.abc.DeliveredMessage) -> None:
        """Acks of the jobs finishing together go out in one write."""
        await self._acks.submit(message)

    @staticmethod
    async def _ack_many(messages: list[aiormq.abc.DeliveredMessage]) -> list[None]:
        by_channel: dict[aiormq.abc.AbstractChannel, list[int]] = {}
        for message in messages:
            by_channel.setdefault(message.channel, []).append(_tag(message))
        for channel, tags in by_channel.items():
            await ack_many(channel, tags)
        return [None] * len(messages)

    async def _failed(
        self,
        message: aiormq.abc.DeliveredMessage,
        concern: str,
        kind: str,
        attempt: int,
        error: Exception,
    ) -> str:
        """A failure a later attempt may not meet: retried until WORKER_MAX_ATTEMPTS. The
        traceback is logged once, on the first attempt; later ones say why in one line."""
        reason = f"{type(error).__name__}: {error}"
        message_id = message.header.properties.message_id
        if attempt == 1:
            log.error("%s message %s failed (attempt 1)", kind, message_id, exc_info=error)
        else:
            log.warning(
                "%s message %s failed again (attempt %d): %s",
                kind,
                message_id,
                attempt,
                one_line(reason),
            )
        if attempt >= self.ctx.settings.WORKER_MAX_ATTEMPTS:
            await self._give_up(message, concern, kind, attempt, reason)
            return "dead_lettered"
        await self._retry(message, concern, attempt, reason)
        return "retried"

    async def _retry(
        self, message: aiormq.abc.DeliveredMessage, concern: str, attempt: int, reason: str
    ) -> None:
        delay = await self._redelivery.retry(message, concern, attempt, reason)
        await self._ack(message)
        self.retried += 1
        log.info(
            "retrying %s message %s in %d ms", concern, message.header.properties.message_id, delay
        )

    async def _give_up(
        self,
        message: aiormq.abc.DeliveredMessage,
        concern: str,
        kind: str,
        attempt: int,
        reason: str,
    ) -> None:
        """To the dead-letter queue (x-error holds the whole reason), in one log line."""
        log.warning(
            "dead-lettering %s message %s after %d attempt(s): %s",
            kind,
            message.header.properties.message_id,
            attempt,
            one_line(reason),
        )
        await self._redelivery.dead_letter(message, concern, attempt, reason)
        await self._ack(message)
        self.dead_lettered += 1
        message_id = _message_id(message)
        if message_id is not None:
            with contextlib.suppress(DatabaseUnavailable):
                async with transaction(self.ctx.pool) as conn:
                    await messages.mark_dead(conn, message_id, reason)

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
        with contextlib.suppress(Exception):  # no longer a live worker for /messaging/health
            await heartbeats.withdraw(
                self.ctx.redis, self.ctx.settings.REDIS_PREFIX, self.worker_id
            )

    def state(self) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "at": time.time(),
            "processed": self.processed,
            "retried": self.retried,
            "dead_lettered": self.dead_lettered,
            "in_flight": len(self._inflight),
            "connected": self.amqp.is_connected,
            "consuming": self.consuming,
            "batches": {**self.ctx.batch_stats(), "acks": self._acks.stats()},
        }

    @property
    def consuming(self) -> bool:
        """Its consumers are on the queues: messages reach it (what readiness reports)."""
        channel = self._channel
        open_channel = channel is not None and not channel.is_closed
        return open_channel and bool(self._consumer_tags) and not self._stopping

    async def heartbeat(self) -> None:
        """Announce this worker in Redis so the server can report its last heartbeat; at once
        when it starts or stops consuming, else every HEARTBEAT_INTERVAL."""
        while True:
            self._changed.clear()
            with contextlib.suppress(Exception):
                await heartbeats.announce(
                    self.ctx.redis,
                    self.ctx.settings.REDIS_PREFIX,
                    self.state(),
                    ttl=int(HEARTBEAT_INTERVAL * 4),
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), HEARTBEAT_INTERVAL)
