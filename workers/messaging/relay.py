"""The outbox relay: runs in every server process, publishes outbox rows to RabbitMQ
(persistent, mandatory, with publisher confirms; a batch in one write, workers/broker/publishing.py)
and deletes each row once confirmed.

It wakes on LISTEN/NOTIFY and also polls, waits while RabbitMQ is down, and claims rows
with FOR UPDATE SKIP LOCKED so that several nodes never publish the same row. A crash
between confirm and delete publishes a row twice; consumers drop the duplicate by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

import aiormq
from aiohttp import web
from opentelemetry import propagate, trace

from server.kernel import spans
from server.kernel.errors import DatabaseUnavailable
from server.kernel.settings import Settings
from storage import outbox
from storage.db import Pool, listening, transaction
from workers.broker.amqp import AmqpConnection, BrokerUnavailable
from workers.broker.publishing import Outgoing, publish_confirmed
from workers.broker.topology import Topology

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("workers.messaging.relay")

PUBLISH_TIMEOUT = 10.0


class OutboxRelay:
    def __init__(self, settings: Settings, pool: Pool, amqp: AmqpConnection) -> None:
        self._settings = settings
        self._pool = pool
        self._amqp = amqp
        self._topology = Topology.from_settings(settings)
        self._wake = asyncio.Event()
        self._channel: aiormq.abc.AbstractChannel | None = None
        self._closing = False
        self.relayed = 0  # outbox rows published and confirmed, for the metrics
        self.postponed = 0  # rows the broker refused, to be tried again
        amqp.on_connect(self._open_channel)
        amqp.on_disconnect(self._forget_channel)

    async def _open_channel(self, connection: aiormq.abc.AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=True)
        await self._topology.declare(channel)
        self._channel = channel
        self._wake.set()  # publish whatever piled up while the broker was away

    def _forget_channel(self) -> None:
        self._channel = None

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop after the current round. Cancellation alone is not enough: aiopg can turn
        a cancelled query into a connection error, which the round would swallow."""
        self._closing = True
        self._wake.set()

    async def run(self) -> None:
        """Publish until closed or cancelled."""
        listener = asyncio.create_task(self._listen(), name="outbox-listen")
        try:
            while not self.is_closing():
                try:
                    await self._amqp.wait_connected(timeout=3600)
                    while await self.publish_batch() >= self._settings.OUTBOX_BATCH_SIZE:
                        pass
                except (DatabaseUnavailable, BrokerUnavailable) as error:
                    log.debug("outbox relay waiting: %s", error)
                except Exception:
                    if self.is_closing():  # a query cut short by shutdown, not a failure
                        break
                    log.exception("outbox relay round failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.OUTBOX_POLL_INTERVAL)
                self._wake.clear()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _listen(self) -> None:
        """Turn NOTIFY outbox into wake-ups; reconnect when the listening connection drops."""
        while not self.is_closing():
            try:
                async with listening(self._settings, outbox.NOTIFY_CHANNEL) as notifications:
                    self._wake.set()
                    while not self.is_closing():
                        await notifications.get()
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.debug("outbox listener lost (%s); retrying", error)
                await asyncio.sleep(1.0)

    async def publish_batch(self) -> int:
        """Claim due rows, publish them in one write, delete the confirmed ones and
        postpone the others. Returns how many rows were claimed."""
        channel = self._channel
        if channel is None or channel.is_closed:
            raise BrokerUnavailable("no publishing channel")
        async with transaction(self._pool) as conn:
            rows = await outbox.claim(conn, self._settings.OUTBOX_BATCH_SIZE)
            if not rows:
                return 0
            row_spans = [self._span(row) for row in rows]
            try:
                results = await publish_confirmed(
                    channel,
                    [self._outgoing(row, span) for row, span in zip(rows, row_spans, strict=True)],
                    PUBLISH_TIMEOUT,
                )
            except BaseException as error:  # nothing was written: the rows stay as they were
                for span in row_spans:
                    _end(span, error)
                if isinstance(
                    error, aiormq.exceptions.AMQPError | aiormq.exceptions.ChannelInvalidStateError
                ):
                    raise BrokerUnavailable(f"publishing channel failed: {error!r}") from error
                raise
            for span, result in zip(row_spans, results, strict=True):
                _end(span, result)
            sent = [row["id"] for row, result in zip(rows, results, strict=True) if result is None]
            await outbox.delete(conn, sent)
            self.relayed += len(sent)
            self.postponed += len(rows) - len(sent)
            for row, result in zip(rows, results, strict=True):
                if result is not None:
                    delay = timedelta(seconds=min(60, 2 ** min(row["attempts"], 6)))
                    await outbox.postpone(conn, row["id"], repr(result), delay)
                    log.warning("outbox message %s not published: %r", row["message_id"], result)
        return len(rows)

    @staticmethod
    def _span(row: dict[str, Any]) -> trace.Span:
        """The PRODUCER span of one message, a child of the request that accepted it (none
        while spans are not recorded)."""
        if not spans.installed():
            return trace.INVALID_SPAN
        span = _tracer.start_span(
            f"{row['routing_key']} publish",
            context=propagate.extract(row["headers"] or {}),
            kind=trace.SpanKind.PRODUCER,
        )
        span.set_attribute("messaging.system", "rabbitmq")
        span.set_attribute("messaging.message.id", str(row["message_id"]))
        return span

    @staticmethod
    def _outgoing(row: dict[str, Any], span: trace.Span) -> Outgoing:
        headers: dict[str, Any] = dict(row["headers"] or {})
        if span.get_span_context().is_valid:  # the worker's parent
            propagate.inject(headers, context=trace.set_span_in_context(span))
        return Outgoing(
            body=bytes(row["body"]),
            exchange=row["exchange"],
            routing_key=row["routing_key"],
            properties=aiormq.spec.Basic.Properties(
                delivery_mode=2,
                message_id=str(row["message_id"]),
                content_type=row["content_type"],
                headers=headers,
                timestamp=row["created_at"],
            ),
        )


def _end(span: trace.Span, error: BaseException | None) -> None:
    if error is not None:
        span.record_exception(error)
        span.set_status(trace.Status(trace.StatusCode.ERROR, repr(error)))
    span.end()


relay_key: web.AppKey[OutboxRelay] = web.AppKey("relay", OutboxRelay)
