"""Server-Sent Events client for GET /realtime/events?channels=a,b.

    async with create_sse_client(url, token=access_token, channels=["public:news"]) as client:
        async for event in client.events():
            print(event.event, event.data)

Events: `connected`, `publication` (its id is the channel cursor), `join`, `leave`, `gap`,
`binary` (data in base64), `error` and a last `close` when the server ends the stream.
The client parses the stream per the EventSource rules (`id`, `event`, `data`, `retry`,
comments), remembers the last id, and after a dropped connection reconnects with
`Last-Event-ID`, so the server replays what was missed. When that is no longer possible the
server sends `recovery-failed`, raised as `RecoveryFailed`.

An `unsubscribed` event (`code` "removed": you were removed from a private channel's members,
or it was deleted) drops that channel, its cursor and its subscription token: a reconnect
follows the other channels (asking for the removed one again would be refused, 403, and end
them all). When no channel is left, the server ends the stream and `events()` returns.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import random
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any

import aiohttp

from realtime_client._auth import FATAL_STATUSES, Credential, credentials, http_error, resolve
from realtime_client._cursors import valid_cursor
from realtime_client.errors import ConnectionClosed, RealtimeError, RecoveryFailed
from realtime_client.sse_parser import SSEEvent, SSEParser

NO_RECONNECT = frozenset({4001, 4003})  # close codes: credentials rejected, session revoked


class SSEClient:
    """See `create_sse_client`."""

    def __init__(
        self,
        url: str,
        channels: Sequence[str],
        credentials: tuple[Credential, Credential, Credential],
        *,
        last_event_id: str | None = None,
        reconnect: bool = True,
        reconnect_delay: float = 0.5,
        max_reconnect_delay: float = 30.0,
        max_reconnect_attempts: int | None = None,
        read_timeout: float | None = 60.0,
        headers: dict[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        subscription_tokens: Sequence[Credential] = (),
    ) -> None:
        self.url = url
        # Sent as X-Subscription-Token (never in the URL), resolved for every connection.
        self._subscription_tokens = list(subscription_tokens)
        self.channels = list(channels)
        self._credentials = credentials
        self._reconnect = reconnect
        self._delay = (reconnect_delay, max_reconnect_delay)
        self._max_attempts = max_reconnect_attempts
        self._read_timeout = read_timeout
        self._headers = dict(headers or {})
        self._session = session
        self._own_session = session is None
        self._response: aiohttp.ClientResponse | None = None
        self._closing = False
        self._cursors: dict[str, str] = {}
        self._removed: set[str] = set()  # channels the server ended (`unsubscribed`)
        self.last_event_id: str | None = None
        self.retry_ms: int | None = None  # the server's `retry:` advice
        self.reconnects = 0
        if last_event_id:
            self._remember(SSEEvent("resume", "", last_event_id))

    async def __aenter__(self) -> SSEClient:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closing = True
        if self._response is not None:
            self._response.close()
        if self._own_session and self._session is not None:
            await self._session.close()

    @property
    def closed(self) -> bool:
        return self._closing

    def _closing_now(self) -> bool:
        return self._closing

    @property
    def resume_id(self) -> str | None:
        """What is sent as Last-Event-ID: the last cursor of every channel (`a=c,b=c`)."""
        known = {name: self._cursors[name] for name in self.channels if name in self._cursors}
        if len(self.channels) == 1:
            return known.get(self.channels[0])
        return ",".join(f"{name}={cursor}" for name, cursor in known.items()) or None

    def _remember(self, event: SSEEvent) -> None:
        """Keep each channel's cursor. The server's id is `cursor` for one channel and
        `a=cursor,b=cursor` for several (bare while only the first channel is subscribed)."""
        if event.id is None:
            return
        self.last_event_id = event.id
        if "=" in event.id:
            for part in event.id.split(","):
                name, _, cursor = part.partition("=")
                if valid_cursor(cursor):
                    self._cursors[name] = cursor
            return
        channel = self.channels[0] if len(self.channels) == 1 else None
        if channel is None:
            with contextlib.suppress(ValueError, AttributeError):
                channel = event.json().get("channel")
        if isinstance(channel, str) and valid_cursor(event.id):
            self._cursors[channel] = event.id

    async def _connect(self) -> aiohttp.ClientResponse:
        assert self._session is not None
        headers, query = await credentials(*self._credentials)
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **headers}
        tokens = [await resolve(token) for token in self._subscription_tokens]
        tokens = [t for t in tokens if not t or _token_channel(t) not in self._removed]
        if any(tokens):
            headers["X-Subscription-Token"] = ",".join(t for t in tokens if t)
        if self.resume_id:
            headers["Last-Event-ID"] = self.resume_id
        params = {"channels": ",".join(self.channels), **query}
        response = await self._session.get(
            self.url,
            params=params,
            headers={**self._headers, **headers},
            timeout=aiohttp.ClientTimeout(total=None, connect=30, sock_read=self._read_timeout),
        )
        if response.status != 200:
            error = http_error(response.status, await response.text())
            response.release()
            raise error
        return response

    async def events(self) -> AsyncIterator[SSEEvent]:
        """Events until `close()`; reconnects (with Last-Event-ID) when the stream drops.
        Raises `RecoveryFailed` (call `events()` again to continue from now),
        `RealtimeError` for a refused request, `ConnectionClosed` when giving up."""
        if self._session is None:
            raise RuntimeError("use `async with client:` before `client.events()`")
        failures = 0
        while not self.closed:
            close_code: int | None = None
            parser = SSEParser()
            try:
                self._response = await self._connect()
                async for chunk in self._response.content.iter_any():
                    for event in parser.feed(chunk):
                        failures = 0
                        self.retry_ms = event.retry or self.retry_ms
                        self._remember(event)
                        if event.event == "recovery-failed":
                            raise self._recovery_failed(event)
                        if event.event == "close":
                            close_code = _close_code(event)
                        if event.event == "unsubscribed":
                            self._unsubscribed(event)
                        yield event
            except RealtimeError as error:
                if isinstance(error, RecoveryFailed) or error.ref in FATAL_STATUSES:
                    raise
            except (aiohttp.ClientError, OSError, TimeoutError, RuntimeError):
                pass  # dropped (aiohttp: RuntimeError "Connection closed."): reconnect below
            finally:
                if self._response is not None:
                    self._response.close()
                    self._response = None
            if self._closing_now():
                return
            if _refused(close_code):
                raise ConnectionClosed("the server ended the stream", close_code)
            if not self.channels:  # every channel was ended by the server: nothing to follow
                return
            if not self._reconnect:
                return
            failures += 1
            if self._max_attempts is not None and failures > self._max_attempts:
                raise ConnectionClosed("gave up reconnecting", code="reconnect_failed")
            base, ceiling = self._delay
            if self.retry_ms is not None:
                base = self.retry_ms / 1000
            delay = min(ceiling, base * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
            await asyncio.sleep(delay)
            self.reconnects += 1

    def _unsubscribed(self, event: SSEEvent) -> None:
        """The server ended a subscription: follow that channel no more."""
        try:
            channel = event.json().get("channel")
        except (ValueError, AttributeError):
            return
        if isinstance(channel, str) and channel in self.channels:
            self.channels.remove(channel)
            self._cursors.pop(channel, None)
            self._removed.add(channel)

    def _recovery_failed(self, event: SSEEvent) -> RecoveryFailed:
        try:
            body = event.json()
        except ValueError:
            body = {}
        channel, cursor = body.get("channel"), body.get("cursor")
        if isinstance(channel, str):
            self._cursors.pop(channel, None)  # calling events() again starts from now
        return RecoveryFailed(channel, cursor)


def create_sse_client(
    url: str,
    token: Credential = None,
    api_key: Credential = None,
    ticket: Credential = None,
    channels: Sequence[str] | str = (),
    **options: Any,
) -> SSEClient:
    """An SSE client for `url` (…/realtime/events) and 1-16 channels (a list or `"a,b"`).

    `token`/`api_key`/`ticket` may be strings or coroutine functions returning a fresh value
    per connection (tickets are single-use). Options: `last_event_id`, `reconnect`,
    `reconnect_delay`, `max_reconnect_delay`, `max_reconnect_attempts`, `read_timeout`,
    `headers`, `session` (see `SSEClient`), and `subscription_tokens` (one per channel of a
    namespace that takes them: strings or async functions, sent in a header)."""
    names = [c for c in channels.split(",") if c] if isinstance(channels, str) else list(channels)
    if not names:
        raise ValueError("give the channels to follow, e.g. channels=['public:news']")
    return SSEClient(url, names, (token, api_key, ticket), **options)


def _refused(close_code: int | None) -> bool:
    return close_code in NO_RECONNECT


def _close_code(event: SSEEvent) -> int | None:
    try:
        code = event.json().get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None


def _token_channel(token: str) -> str | None:
    """The channel a subscription token names (read, not verified: the server verifies)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return None
    channel = claims.get("channel") if isinstance(claims, dict) else None
    return channel if isinstance(channel, str) else None
