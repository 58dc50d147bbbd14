"""RabbitMQ outages as the log tells them, and the retry schedule that ends them quickly.

`backoff_delays` waits at most `RETRY_CAP` (1 s) between two connection attempts, so a
connection is back within about a second of the broker. `OutageLog` turns the attempts into
three kinds of line: one WARNING when an outage starts (host:port, never the password, and
that it retries), a summary at most every `SUMMARY_EVERY` seconds, one INFO when it ends.
With several brokers (`broker_urls`) an attempt tries each in turn and fails only when
none answers; the lines name every address, and the one connected to in the end.
aiormq logs an ERROR of its own for every failed attempt, a traceback when a live
connection drops, and an ERROR when a stopping broker closes it; `quiet_connect_failures()`
filters out exactly those three records.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator

from yarl import URL

log = logging.getLogger("workers.broker.amqp")  # the connection's own logger, one name to filter

RETRY_CAP = 1.0  # the longest wait between two connection attempts, in seconds
SUMMARY_EVERY = 60.0  # seconds between two "still unreachable" lines
CONNECTION_FORCED = 320  # the reply code of a broker closing its connections as it stops

START_HINT = (
    "start it with `rabbitmq-server -detached` (or `docker compose up -d rabbitmq`), "
    "or point RABBITMQ_URL at a running broker"
)


def broker_urls(value: str) -> list[str]:
    """The brokers of RABBITMQ_URL: one AMQP URL, or several separated by commas (the nodes
    of a cluster, tried in turn; a comma inside a password is written %2C)."""
    urls = [part.strip() for part in value.split(",") if part.strip()]
    if not urls:
        raise ValueError("RABBITMQ_URL names no broker")
    return urls


def broker_address(url: str) -> str:
    """`host:port` of an AMQP URL (of each, comma-separated, for several), for log lines
    (never the credentials)."""
    addresses = []
    for one in broker_urls(url):
        parsed = URL(one)
        port = parsed.port or (5671 if parsed.scheme == "amqps" else 5672)
        addresses.append(f"{parsed.host}:{port}")
    return ", ".join(addresses)


def backoff_delays(
    first: float = 0.25, cap: float = RETRY_CAP, rand: Callable[[], float] = random.random
) -> Iterator[float]:
    """Seconds to wait before each retry: doubling from `first` up to `cap`. The jitter only
    shortens a wait (75-100 %), so no wait ever exceeds `cap`."""
    delay = first
    while True:
        yield delay * (0.75 + 0.25 * rand())
        delay = min(delay * 2, cap)


class OutageLog:
    """What the log says about one connection's outages: a WARNING when one starts (naming
    host:port and that it retries), a summary at most every `summary_every` seconds, and an
    INFO when it ends. Failed attempts in between are only counted."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        summary_every: float = SUMMARY_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = name
        self._address = broker_address(url)
        self._summary_every = summary_every
        self._clock = clock
        self._started: float | None = None
        self._reported = 0.0
        self.attempts = 0

    @property
    def active(self) -> bool:
        return self._started is not None

    def _start(self) -> None:
        self._started = self._reported = self._clock()
        self.attempts = 0

    def lost(self, url: str | None = None) -> None:
        """The open connection (to `url`, one of several brokers) closed under us."""
        self._start()
        log.warning(
            "%s lost its RabbitMQ connection to %s; retrying every second until it is back",
            self._name,
            broker_address(url) if url is not None else self._address,
        )

    def failed(self, error: str) -> None:
        """One connection attempt failed."""
        if self._started is None:
            self._start()
            log.warning(
                "%s: RabbitMQ at %s is unreachable (%s); retrying every second until it is "
                "back. %s",
                self._name,
                self._address,
                error,
                START_HINT,
            )
        self.attempts += 1
        now = self._clock()
        if now - self._reported >= self._summary_every:
            self._reported = now
            log.warning(
                "%s: RabbitMQ still unreachable after %d s, %d attempts (%s)",
                self._name,
                now - (self._started or now),
                self.attempts,
                error,
            )

    def recovered(self, url: str | None = None) -> None:
        """Connected (and set up) again, to `url` (one of several brokers)."""
        if self._started is None:
            return
        log.info(
            "%s: RabbitMQ reachable again after %d s (%d attempts); connected to %s",
            self._name,
            self._clock() - self._started,
            self.attempts,
            broker_address(url) if url is not None else self._address,
        )
        self._started = None


class _QuietConnectFailures(logging.Filter):
    """Drops the aiormq records that only repeat what `OutageLog` says: the ERROR
    "error when creating transport" before every failed connection attempt (the error is
    raised to `AmqpConnection.run()`), the WARNING with a traceback when a live
    connection's socket drops (reset or end of stream), and the ERROR "Unexpected connection
    close" when the broker closes it because it stops (CONNECTION_FORCED, `rabbitmqctl
    stop_app`). Every other aiormq record passes, including a reader that died of a
    malformed frame or a connection closed for another reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        # The message templates of aiormq 7.2 connection.py.
        if record.msg == "error when creating transport: %r":
            return False
        if record.msg == "Cancelling cause reader exited abnormally" and record.exc_info:
            return not isinstance(record.exc_info[1], ConnectionError | EOFError)
        if str(record.msg).startswith("Unexpected connection close from remote"):
            args = record.args if isinstance(record.args, tuple) else ()
            return args[1:2] != (CONNECTION_FORCED,)  # a broker (node) shutting down
        return True


def quiet_connect_failures() -> None:
    # A logging filter is process-wide by nature; adding it once per process keeps it
    # idempotent however many connections are made.
    logger = logging.getLogger("aiormq.connection")
    if not any(isinstance(f, _QuietConnectFailures) for f in logger.filters):
        logger.addFilter(_QuietConnectFailures())
