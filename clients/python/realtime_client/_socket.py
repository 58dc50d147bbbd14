"""A WebSocket that reconnects: the transport under `WSClient`.

It authenticates each connection attempt, reads the server's `connected` frame, hands every
later frame to the subclass (`_on_text`, `_on_binary`) and, when the connection drops,
tells the subclass (`_on_lost`) and reconnects with exponential backoff and jitter. It
stops for good (`_on_finish`) when closed, when refused (401/403, close codes 4001/4003),
when reconnecting is off, or after `max_reconnect_attempts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import aiohttp

from realtime_client._auth import FATAL_STATUSES, Credential, credentials, status_error
from realtime_client.errors import ConnectionClosed, ConnectionLost, RealtimeError

NO_RECONNECT = frozenset({4001, 4003})  # credentials rejected, session revoked
SEND_ERRORS = (ConnectionError, aiohttp.ClientError, RuntimeError)
_ENDED = (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


class ReconnectingSocket:
    def __init__(
        self,
        url: str,
        token: Credential = None,
        api_key: Credential = None,
        ticket: Credential = None,
        *,
        reconnect: bool = True,
        reconnect_delay: float = 0.25,
        max_reconnect_delay: float = 10.0,
        max_reconnect_attempts: int | None = None,
        request_timeout: float = 10.0,
        heartbeat: float | None = 20.0,
        headers: dict[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url
        self._credentials = (token, api_key, ticket)
        self._reconnect = reconnect
        self._delay = (reconnect_delay, max_reconnect_delay)
        self._max_attempts = max_reconnect_attempts
        self._timeout = request_timeout
        self._heartbeat = heartbeat
        self._headers = dict(headers or {})
        self._session = session
        self._own_session = session is None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._broken: aiohttp.ClientWebSocketResponse | None = None  # a send failed on it
        self._runner: asyncio.Task[None] | None = None
        self._state = asyncio.Event()  # set while connected, or once closed for good
        self._failure: RealtimeError | None = None
        self._closing = False
        self.hello: dict[str, Any] = {}  # the `connected` frame: client_id, user_id, node
        self.reconnects = 0

    @property
    def client_id(self) -> str | None:
        return self.hello.get("client_id")

    @property
    def user_id(self) -> int | None:
        return self.hello.get("user_id")

    @property
    def connected(self) -> bool:
        ws = self._ws
        return ws is not None and not ws.closed and ws is not self._broken

    # -- hooks for the protocol layer ---------------------------------------------------------

    async def _on_text(self, frame: dict[str, Any]) -> None:
        """A JSON frame from the server."""

    async def _on_binary(self, data: bytes) -> None:
        """A binary frame from the server."""

    def _on_open(self) -> None:
        """A connection is ready (called again after each reconnect)."""

    def _on_lost(self, error: RealtimeError) -> None:
        """The connection dropped (or ended for good, then `_on_finish` follows)."""

    def _on_finish(self, error: RealtimeError) -> None:
        """No more connections: closed by the user, refused, or gave up."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the first connection; failures (refused credentials too) raise here."""
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=None, connect=self._timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)
        try:
            ws = await self._open()
        except BaseException:
            await self.close()
            raise
        self._ws = ws
        self._state.set()
        self._runner = asyncio.create_task(self._run(ws))

    async def close(self) -> None:
        """Close the connection for good."""
        self._closing = True
        if self._ws is not None:
            with contextlib.suppress(*SEND_ERRORS):
                await self._ws.close()
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        self._finish(ConnectionClosed("the client was closed"))
        if self._own_session and self._session is not None:
            await self._session.close()

    def _finish(self, error: RealtimeError) -> None:
        if self._failure is None:
            self._failure = error
            self._on_lost(error)
            self._on_finish(error)
        self._state.set()

    async def _open(self) -> aiohttp.ClientWebSocketResponse:
        assert self._session is not None
        headers, query = await credentials(*self._credentials)
        try:
            ws = await self._session.ws_connect(
                self.url,
                headers={**self._headers, **headers},
                params=query,
                heartbeat=self._heartbeat,
                timeout=aiohttp.ClientWSTimeout(ws_close=self._timeout),
            )
        except aiohttp.WSServerHandshakeError as error:
            if error.status in FATAL_STATUSES:
                raise status_error(error.status) from None
            raise
        try:
            message = await ws.receive(timeout=self._timeout)
            hello = json.loads(message.data) if message.type is aiohttp.WSMsgType.TEXT else None
            if not isinstance(hello, dict) or hello.get("type") != "connected":
                raise ConnectionError(f"expected a `connected` frame, got {message.type.name}")
        except BaseException:
            await ws.close()
            raise
        self.hello = hello
        return ws

    async def _run(self, ws: aiohttp.ClientWebSocketResponse | None) -> None:
        try:
            while ws is not None:
                self._ws = ws
                self._state.set()
                self._on_open()
                close_code = await self._read(ws)
                self._ws = None
                self._state.clear()
                self._on_lost(ConnectionLost())
                if self._closing:
                    return
                if not self._reconnect or close_code in NO_RECONNECT:
                    message = "the server closed the connection"
                    self._finish(ConnectionClosed(message, close_code))
                    return
                ws = await self._reopen()
        except Exception as error:  # a bug here must not leave requests waiting forever
            self._finish(ConnectionClosed(f"the client failed: {error!r}", code="client_error"))
            raise

    async def _reopen(self) -> aiohttp.ClientWebSocketResponse | None:
        """Reconnect with exponential backoff and jitter; None when giving up."""
        base, ceiling = self._delay
        attempt = 0
        while True:
            if self._max_attempts is not None and attempt >= self._max_attempts:
                self._finish(ConnectionClosed("gave up reconnecting", code="reconnect_failed"))
                return None
            await asyncio.sleep(min(ceiling, base * 2**attempt) * random.uniform(0.5, 1.0))
            attempt += 1
            try:
                ws = await self._open()
            except RealtimeError as error:  # refused: retrying will not help
                self._finish(ConnectionClosed(error.message, error.ref, error.code))
                return None
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
                continue
            self.reconnects += 1
            return ws

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> int | None:
        """Dispatch frames until the connection ends; the close code the server sent.
        (Not `ws.close_code` alone: when the server drops TCP right after its close frame,
        aiohttp cannot send the close reply and reports 1006 instead of the server's code.)"""
        while True:
            message = await ws.receive()
            if message.type is aiohttp.WSMsgType.TEXT:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    frame = json.loads(message.data)
                    if isinstance(frame, dict):
                        await self._on_text(frame)
            elif message.type is aiohttp.WSMsgType.BINARY:
                await self._on_binary(message.data)
            elif message.type is aiohttp.WSMsgType.CLOSE:
                return int(message.data)
            elif message.type in _ENDED:
                return ws.close_code

    # -- sending -----------------------------------------------------------------------------

    async def _ready(self) -> aiohttp.ClientWebSocketResponse:
        """The live socket, waiting for a reconnect if needed."""
        while True:
            if self._failure is not None:
                raise self._failure
            if self._runner is None:
                raise RuntimeError("use `async with WSClient(...)` or `await connect()` first")
            if self.connected:
                assert self._ws is not None
                return self._ws
            self._state.clear()  # the runner sets it again once reconnected
            await self._state.wait()

    async def _send(self, payload: str | bytes, *, wait: bool = True) -> None:
        """Send (waiting for a reconnect, unless `wait` is false); `ConnectionLost` if the
        connection is going away."""
        if wait:
            await self._ready()
        ws = self._ws
        if ws is None or not self.connected:
            raise ConnectionLost()
        try:
            if isinstance(payload, bytes):
                await ws.send_bytes(payload)
            else:
                await ws.send_str(payload)
        except SEND_ERRORS:
            self._broken = ws  # the reader will notice the end soon; until then, wait
            raise ConnectionLost() from None


def json_request(frame: dict[str, Any]) -> Callable[[int], str]:
    """Encodes `frame` with a request id (the server echoes it in the reply)."""

    def encode(request_id: int) -> str:
        return json.dumps({**frame, "id": request_id}, ensure_ascii=False)

    return encode
