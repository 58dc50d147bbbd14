"""A supervised RabbitMQ connection: aiormq has no reconnection, so this owns one.

`AmqpConnection.run()` connects with backoff, calls every `on_connect` callback (declare the
topology, open channels, start consuming), waits until the connection closes, and starts
again. Callers that need the broker await `wait_connected()`, which raises after a timeout.

While the broker is unreachable it retries at least once a second and logs through
`outages.OutageLog` (one line as an outage starts, a summary a minute, one as it ends).

The URL may name several brokers, comma-separated (the nodes of a cluster): each attempt
tries them in turn from the one last used, and a connection lost moves on to the next, so
a node that stops costs one reconnection. A `BrokerMisconfigured` error from a callback (a
queue that exists with another type) is logged once, in one line saying what to do, then
retried quietly every `MISCONFIGURED_RETRY` seconds: no crash loop, and it recovers by
itself once the operator has acted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiormq
from aiohttp import web
from yarl import URL

from workers.broker.outages import (
    RETRY_CAP,
    OutageLog,
    backoff_delays,
    broker_address,
    broker_urls,
    quiet_connect_failures,
)

log = logging.getLogger(__name__)

OnConnect = Callable[[aiormq.abc.AbstractConnection], Awaitable[None]]
OnDisconnect = Callable[[], None]

CLOSE_TIMEOUT = 2.0
MISCONFIGURED_RETRY = 15.0  # seconds between two set-ups while the broker is misconfigured


def safe_url(url: str) -> str:
    """The URL without its password, for log lines."""
    parsed = URL(url)
    return str(parsed.with_password(None)) if parsed.password else str(parsed)


async def _close_quietly(connection: aiormq.abc.AbstractConnection) -> None:
    """Close without raising and without waiting long: after a cancelled handshake or RPC
    the broker may never answer Connection.Close."""
    with contextlib.suppress(Exception, asyncio.CancelledError):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await asyncio.shield(connection.close())


def _close_abandoned(attempt: asyncio.Future[aiormq.abc.AbstractConnection]) -> None:
    if attempt.cancelled() or attempt.exception() is not None:
        return
    connection = attempt.result()
    close = asyncio.ensure_future(connection.close())
    close.add_done_callback(lambda done: done.cancelled() or done.exception())


def persistent_copy(
    message: aiormq.abc.DeliveredMessage, headers: dict[str, Any]
) -> aiormq.spec.Basic.Properties:
    """Properties to republish a delivered message (retry, dead letter, requeue): persistent,
    same id, type and timestamp, with `headers` as its headers."""
    properties = message.header.properties
    return aiormq.spec.Basic.Properties(
        delivery_mode=2,
        message_id=properties.message_id,
        content_type=properties.content_type,
        timestamp=properties.timestamp,
        headers=headers,
    )


COMMAND_CONNECT_TIMEOUT = 10.0  # a broker that drops packets must not hang a command


async def connect_any(url: str) -> aiormq.abc.AbstractConnection:
    """One unsupervised connection (a command's) to the first of the brokers that answers
    within COMMAND_CONNECT_TIMEOUT."""
    urls = broker_urls(url)
    for candidate in urls[:-1]:
        with contextlib.suppress(OSError, TimeoutError, aiormq.exceptions.AMQPError):
            return await asyncio.wait_for(aiormq.connect(candidate), COMMAND_CONNECT_TIMEOUT)
    return await asyncio.wait_for(aiormq.connect(urls[-1]), COMMAND_CONNECT_TIMEOUT)


class BrokerUnavailable(Exception):
    """RabbitMQ could not be reached within the wait."""


class BrokerMisconfigured(Exception):
    """The broker refuses the set-up, and retrying alone cannot help: the message says what
    the operator should do."""


class AmqpConnection:
    def __init__(
        self,
        url: str,
        *,
        name: str,
        connect_timeout: float = 5.0,
        max_backoff: float = RETRY_CAP,
    ) -> None:
        self._urls = broker_urls(url)
        self._current = 0  # index of the broker to try first
        self.name = name
        self._connect_timeout = connect_timeout
        self._max_backoff = max_backoff
        self._on_connect: list[OnConnect] = []
        self._on_disconnect: list[OnDisconnect] = []
        self._ready = asyncio.Event()
        self.connection: aiormq.abc.AbstractConnection | None = None
        self.last_error: str | None = None
        self.connects = 0
        self._closing = False
        self._stop = asyncio.Event()
        self._misconfigured: str | None = None  # the reason last logged
        self._outage = OutageLog(name, url)
        quiet_connect_failures()

    def on_connect(self, callback: OnConnect) -> None:
        self._on_connect.append(callback)

    def on_disconnect(self, callback: OnDisconnect) -> None:
        self._on_disconnect.append(callback)

    @property
    def url(self) -> str:
        """The broker connected to, or tried first next."""
        return self._urls[self._current]

    def is_closing(self) -> bool:
        return self._closing

    @property
    def is_connected(self) -> bool:
        return (
            self._ready.is_set() and self.connection is not None and not self.connection.is_closed
        )

    async def wait_connected(self, timeout: float) -> aiormq.abc.AbstractConnection:
        if self.is_connected:
            assert self.connection is not None
            return self.connection
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise BrokerUnavailable(self.last_error or "RabbitMQ is not connected") from None
        assert self.connection is not None
        return self.connection

    async def ping(self, timeout: float) -> float:
        """Seconds for one round trip to the broker (open and close a channel); waits up to
        `timeout` for a connection in progress."""
        started = time.perf_counter()
        connection = await self.wait_connected(timeout)
        async with asyncio.timeout(timeout):
            channel = await connection.channel(publisher_confirms=False)
            await channel.close()
        return time.perf_counter() - started

    async def run(self) -> None:
        """Keep a connection open until cancelled."""
        delays = backoff_delays(cap=self._max_backoff)
        while not self.is_closing():
            try:
                connection = await self._connect()
            except (OSError, TimeoutError, aiormq.exceptions.AMQPError) as error:
                self.last_error = f"{type(error).__name__}: {error}".strip(": ")
                self._outage.failed(self.last_error)
                await asyncio.sleep(next(delays))
                continue
            await self._serve(connection)
            delays = backoff_delays(cap=self._max_backoff)

    async def _connect(self) -> aiormq.abc.AbstractConnection:
        """Try every broker once, from the current one; the first that answers is current.
        With several, the error names each address."""
        errors: list[str] = []
        for _ in self._urls:
            try:
                return await self._connect_to(self.url)
            except (OSError, TimeoutError, aiormq.exceptions.AMQPError) as error:
                if len(self._urls) == 1:
                    raise
                errors.append(f"{broker_address(self.url)}: {type(error).__name__}: {error}")
                self._current = (self._current + 1) % len(self._urls)
        raise ConnectionError("; ".join(errors))

    async def _connect_to(self, url: str) -> aiormq.abc.AbstractConnection:
        """Open a connection within the timeout. aiormq may not honour a cancellation in the
        middle of its handshake, so the attempt runs shielded: on cancellation we return at
        once and a callback closes the connection if the abandoned attempt still succeeds."""
        attempt: asyncio.Future[aiormq.abc.AbstractConnection] = asyncio.ensure_future(
            aiormq.connect(url, client_properties={"connection_name": self.name})
        )
        try:
            return await asyncio.wait_for(asyncio.shield(attempt), self._connect_timeout)
        except BaseException:
            attempt.add_done_callback(_close_abandoned)
            if not attempt.done():
                attempt.cancel()
            raise

    async def _serve(self, connection: aiormq.abc.AbstractConnection) -> None:
        self.connection = connection
        try:
            for callback in self._on_connect:
                await callback(connection)
            if self.is_closing():  # close() ran meanwhile; aiormq may have eaten the cancel
                return
            self.connects += 1
            self.last_error = None
            self._misconfigured = None
            self._ready.set()
            if self._outage.active:
                self._outage.recovered(self.url)
            else:
                log.info(
                    "%s connected to RabbitMQ at %s%s",
                    self.name,
                    safe_url(self.url),
                    " (recovered)" if self.connects > 1 else "",
                )
            stopped = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait(
                    [connection.closing, stopped], return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                stopped.cancel()
            if self.is_closing():
                return
            self.last_error = "connection closed"
            self._outage.lost(self.url)
            self._current = (self._current + 1) % len(self._urls)  # this one may be down
        except BrokerMisconfigured as error:
            if self.is_closing():
                return
            self.last_error = str(error)
            if self._misconfigured != self.last_error:
                self._misconfigured = self.last_error
                log.error("%s: RabbitMQ refused the set-up: %s", self.name, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), MISCONFIGURED_RETRY)
        except Exception as error:  # aiormq raises bare Exception for a channel closed under it
            if self.is_closing():
                return
            self.last_error = f"{type(error).__name__}: {error}"
            log.warning("%s: RabbitMQ setup failed (%r); reconnecting", self.name, error)
            await asyncio.sleep(0.5)
        finally:
            self._ready.clear()
            self.connection = None
            for on_disconnect in self._on_disconnect:
                on_disconnect()
            await _close_quietly(connection)

    async def close(self) -> None:
        self._closing = True
        self._stop.set()
        connection = self.connection
        self._ready.clear()
        if connection is not None and not connection.is_closed:
            await _close_quietly(connection)


amqp_key: web.AppKey[AmqpConnection] = web.AppKey("amqp", AmqpConnection)
