"""`WSClient`: the realtime WebSocket protocol (WS /realtime/ws) with automatic reconnect.

Requests carry an integer `id`; the server echoes it in the reply (or as `ref` of an
`error` frame, raised as `RealtimeError`). Everything else the server sends (publications,
join/leave, gaps, binary messages, errors not tied to a request) is yielded by `messages()`.
The client remembers the cursor of the last publication it saw on every channel; after a
reconnect it subscribes again with `since=<cursor>`, so the server replays what was missed,
and duplicates are dropped: each publication is yielded once, in order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp

from realtime_client import files, webrtc
from realtime_client._auth import Credential, credentials, resolve
from realtime_client._cursors import ChannelCursors
from realtime_client._socket import ReconnectingSocket, json_request
from realtime_client.binary import BinaryFrameError, BinaryMessage
from realtime_client.errors import ConnectionLost, RealtimeError

Frame = dict[str, Any]
Incoming = Frame | BinaryMessage


class WSClient(ReconnectingSocket):
    """`async with WSClient(url, token=...) as client: ...`

    Credentials: `token` (Authorization: Bearer), `api_key` (X-API-Key) or `ticket`
    (`?ticket=`), each a string or a coroutine function returning a fresh value before
    every (re)connection (tickets are single-use: pass a function to allow reconnects).
    Options: `reconnect`, `reconnect_delay`, `max_reconnect_delay`, `max_reconnect_attempts`,
    `request_timeout`, `heartbeat`, `headers`, `session`. Requests made while reconnecting
    wait for the new connection."""

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
        super().__init__(
            url,
            token,
            api_key,
            ticket,
            reconnect=reconnect,
            reconnect_delay=reconnect_delay,
            max_reconnect_delay=max_reconnect_delay,
            max_reconnect_attempts=max_reconnect_attempts,
            request_timeout=request_timeout,
            heartbeat=heartbeat,
            headers=headers,
            session=session,
        )
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Frame]] = {}
        self._files = files.Uploads()
        self._channels = ChannelCursors()  # subscribed channel -> last cursor seen
        self._tokens: dict[str, Credential] = {}  # channel -> its subscription token
        self._resubscribing: set[int] = set()
        self._resubscriber: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[Incoming | None] = asyncio.Queue()

    @property
    def channels(self) -> dict[str, str | None]:
        """Subscribed channels and the cursor of the last publication seen on each."""
        return dict(self._channels)

    # -- connection events -------------------------------------------------------------------

    def _on_open(self) -> None:
        if self._channels:
            self._resubscriber = asyncio.create_task(self._resubscribe())

    def _on_lost(self, error: RealtimeError) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        self._files.fail(error)
        if self._resubscriber is not None:
            self._resubscriber.cancel()

    def _on_finish(self, error: RealtimeError) -> None:
        self._queue.put_nowait(None)

    async def close(self) -> None:
        """Close the connection for good; `messages()` ends."""
        await super().close()
        if self._resubscriber is not None:
            await asyncio.gather(self._resubscriber, return_exceptions=True)

    async def _resubscribe(self) -> None:
        """After a reconnect: every channel again (all at once), from the last cursor seen."""
        await asyncio.gather(*(self._resubscribe_one(c) for c in list(self._channels)))

    async def _resubscribe_one(self, channel: str) -> None:
        frame: Frame = {"type": "subscribe", "channel": channel}
        cursor = self._channels.get(channel)
        if cursor:
            frame["since"] = cursor
        token = await resolve(self._tokens.get(channel))
        if token:
            frame["token"] = token
        try:
            await self._call(json_request(frame), resubscribe=True)
        except ConnectionLost:
            return
        except RealtimeError as error:
            self._channels.pop(channel, None)
            failed = {"type": "error", "code": error.code, "message": error.message}
            await self._queue.put({**failed, "ref": "resubscribe", "channel": channel})

    # -- receiving ---------------------------------------------------------------------------

    async def _on_binary(self, data: bytes) -> None:
        try:
            await self._queue.put(BinaryMessage.from_frame(data))
        except BinaryFrameError:
            return

    async def _on_text(self, frame: Frame) -> None:
        kind = frame.get("type")
        if kind == "publication":
            if self._channels.fresh(frame):
                await self._queue.put(frame)
            return
        if kind == "subscribed":  # replayed publications first, in order
            for publication in frame.get("publications") or ():
                if self._channels.fresh(publication):
                    await self._queue.put(publication)
            self._channels[frame["channel"]] = frame.get("cursor")
            if frame.get("id") in self._resubscribing and not frame.get("recovered"):
                gap = {"type": "gap", "channel": frame["channel"], "cursor": frame.get("cursor")}
                await self._queue.put(gap)
        elif kind == "unsubscribed":  # a reply, or the server's (`code`: "removed")
            self._channels.pop(frame.get("channel", ""), None)
            self._tokens.pop(frame.get("channel", ""), None)
        elif kind == "gap":
            self._channels[frame["channel"]] = frame.get("cursor")
        elif kind == "file.ack":
            self._files.ack(frame)
            return
        ref = frame.get("ref") if kind == "error" else frame.get("id")
        future = self._pending.pop(ref, None) if type(ref) is int else None
        if future is None and kind == "error" and ref == "file":
            self._files.fail(RealtimeError.from_frame(frame))
        elif future is None:
            await self._queue.put(frame)
        elif not future.done():
            if kind == "error":
                future.set_exception(RealtimeError.from_frame(frame))
            else:
                future.set_result(frame)

    async def messages(self) -> AsyncIterator[Incoming]:
        """Incoming frames that are not replies: dicts (publication, join, leave, gap,
        error, ...) and `BinaryMessage`s. Ends when the client is closed; raises
        `ConnectionClosed` when the connection is lost for good."""
        while True:
            item = await self._queue.get()
            if item is None:
                self._queue.put_nowait(None)  # for any other reader
                if self._failure is not None and not self._closing:
                    raise self._failure
                return
            yield item

    # -- requests ----------------------------------------------------------------------------

    async def _call(
        self,
        encode: Callable[[int], str | bytes],
        *,
        retry: bool = False,
        file: bool = False,
        resubscribe: bool = False,
    ) -> Frame:
        """Send one request and wait for its reply. `retry`: resend after a reconnect."""
        while True:
            await self._ready()
            request_id = next(self._ids)
            future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
            self._pending[request_id] = future
            if file:
                self._files.waiters.add(future)
            if resubscribe:
                self._resubscribing.add(request_id)
            try:
                await self._send(encode(request_id), wait=False)
                return await asyncio.wait_for(future, self._timeout)
            except ConnectionLost:
                if not retry or self._failure is not None:
                    raise
            finally:
                self._pending.pop(request_id, None)
                self._files.waiters.discard(future)
                self._resubscribing.discard(request_id)

    async def request(self, frame: Frame, *, retry: bool = False, file: bool = False) -> Frame:
        """Send any JSON message (an `id` is added) and return the server's reply."""
        return await self._call(json_request(frame), retry=retry, file=file)

    async def send_text(self, text: str, to: int | None = None) -> Frame:
        """Without `to`: the server's echo (`message`). With `to` (a user id): a direct
        message, published on `user:<to>`; returns the ack."""
        frame: Frame = {"type": "message", "text": text}
        if to is not None:
            frame["to"] = to
        return await self.request(frame)

    async def send_binary(self, message: BinaryMessage) -> Frame:
        """Publish `message` on `message.channel`, or have it echoed back (no channel, the
        echo arrives through `messages()`). Returns the ack."""
        return await self._call(message.to_frame)

    async def ping(self, data: Any = None) -> Frame:
        return await self.request({"type": "ping", "data": data}, retry=True)

    async def subscribe(
        self, channel: str, since: str | None = None, token: Credential = None
    ) -> Frame:
        """Subscribe, recovering what was published after cursor `since`. Returns the
        `subscribed` reply; its recovered publications are also yielded by `messages()`.
        `token`: a subscription token (a string, or an async function asked again when
        resubscribing after a reconnect) for namespaces that accept them."""
        frame: Frame = {"type": "subscribe", "channel": channel}
        if since:
            frame["since"] = since
        value = await resolve(token)
        if value:
            frame["token"] = value
        reply = await self.request(frame, retry=True)
        if token is not None:
            self._tokens[channel] = token
        return reply

    async def unsubscribe(self, channel: str) -> Frame:
        self._tokens.pop(channel, None)
        known = self._channels.pop(channel, False) is not False
        unsubscribed: Frame = {"type": "unsubscribed", "channel": channel}
        if known and not self.connected:  # the next connection will not subscribe again
            return unsubscribed
        try:
            return await self.request({"type": "unsubscribe", "channel": channel})
        except ConnectionLost:
            return unsubscribed

    async def publish(self, channel: str, data: Any) -> Frame:
        """Publish JSON `data`; returns the ack `{"offset", "cursor"}`. Not resent after a
        reconnect (it might have been published): raises `ConnectionLost` instead."""
        return await self.request({"type": "publish", "channel": channel, "data": data})

    async def presence(self, channel: str) -> Frame:
        """The reply `{"channel", "members": [{"client_id", "user_id", ...}]}`."""
        return await self.request({"type": "presence", "channel": channel}, retry=True)

    async def send_file(
        self,
        path: str | Path,
        channel: str | None = None,
        progress: files.Progress | None = None,
        sha256: bool = True,
        *,
        name: str | None = None,
        mime: str | None = None,
    ) -> Frame:
        """Upload a file in chunks, resuming after reconnects; returns `file.done`
        (`file_id`, `url`, `sha256`, ...). `progress(confirmed_bytes, total)` may be async.
        With `channel`, subscribers get a publication `{"kind": "file", ...}`."""
        return await files.send_file(self, Path(path), channel, progress, sha256, name, mime)

    async def send_webrtc_signal(
        self, signal_type: str, target_peer_id: str, sdp: str | None = None, candidate: Any = None
    ) -> None:
        """Send `{"type": signal_type, "to": target_peer_id, "sdp"|"candidate": ...}`.
        Answers (and errors) arrive through `messages()`."""
        frame: Frame = {"type": signal_type, "to": target_peer_id}
        if sdp is not None:
            frame["sdp"] = sdp
        if candidate is not None:
            frame["candidate"] = candidate
        await self._send(json.dumps(frame, ensure_ascii=False))

    async def ice_servers(self) -> list[dict[str, Any]]:
        """STUN/TURN servers for a new peer connection, with a fresh TURN credential
        (GET /realtime/webrtc/ice-servers). Needs `token` or `api_key`: a ticket
        authenticates the socket only."""
        token, api_key, _ = self._credentials
        auth, _ = await credentials(token, api_key, None)
        headers = {**self._headers, **auth}
        url = webrtc.ice_servers_url(self.url)
        if self._session is not None and not self._session.closed:
            return await webrtc.fetch_ice_servers(self._session, url, headers, self._timeout)
        async with aiohttp.ClientSession() as session:
            return await webrtc.fetch_ice_servers(session, url, headers, self._timeout)

    async def offer_to_server(self, sdp: str, room: str | None = None) -> dict[str, Any]:
        """A new server peer's answer `{"sdp", "type", "peer_id"}` (POST
        /realtime/webrtc/offer), e.g. to resume bridged data channels after a network change
        (webrtc.BridgeCursors). Needs `token` or `api_key`, like ice_servers()."""
        token, api_key, _ = self._credentials
        auth, _ = await credentials(token, api_key, None)
        headers = {**self._headers, **auth}
        url = webrtc.offer_url(self.url)
        if self._session is not None and not self._session.closed:
            return await webrtc.offer_to_server(
                self._session, url, headers, sdp, self._timeout, room
            )
        async with aiohttp.ClientSession() as session:
            return await webrtc.offer_to_server(session, url, headers, sdp, self._timeout, room)
