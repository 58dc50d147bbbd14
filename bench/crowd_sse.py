"""The event-stream member of the crowd (bench/crowd.py): one GET /realtime/events per client
for its channels, read like the WebSocket clients (recvmsg, kernel receive times, offsets
checked), the chunked body decoded into events whose data is the WebSocket frame of the
same name. Ready once the last channel's `subscribed` event came."""

from __future__ import annotations

from typing import Any

import orjson

from bench.crowd import Client, MessageFn


class StreamClient(Client):
    PATH = "/realtime/events"
    STATUS = b"HTTP/1.1 200"
    __slots__ = ("_text", "channels")

    def __init__(self, index: int, user_id: int, token: str, on_message: MessageFn) -> None:
        super().__init__(index, user_id, token, on_message)
        self.channels: list[str] = []
        self._text = b""

    async def join(self, host: str, port: int, channels: list[str]) -> None:
        """Open the stream of `channels` (named in its URL); ready at the last `subscribed`."""
        self.channels = channels
        await self.connect(host, port, self.PATH, timeout=60)

    def _request(self, host: str, port: int, path: str) -> bytes:
        self._text = b""
        query = ",".join(self.channels)
        return (
            f"GET {path}?channels={query} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Accept: text/event-stream\r\nAuthorization: Bearer {self.token}\r\n\r\n"
        ).encode()

    def _first_message(self) -> Any:
        return ("subscribed", self.channels[-1])

    def _frames(self, data: bytes, received: int) -> bytes:
        """Decode the whole chunks of `data`, handle the whole events; return the rest."""
        pos, pieces = 0, []
        while (end_of_size := data.find(b"\r\n", pos)) >= 0:
            size = int(data[pos:end_of_size].split(b";", 1)[0], 16)
            end = end_of_size + 2 + size
            if end + 2 > len(data):
                break
            if size == 0:
                self._lost(ConnectionError("the server ended the stream"))
                return b""
            pieces.append(data[end_of_size + 2 : end])
            pos = end + 2
        text = self._text + b"".join(pieces)
        if b"\r" in text:
            text = text.replace(b"\r\n", b"\n")
        events = text.split(b"\n\n")
        self._text = events.pop()
        for event in events:
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    self._message(orjson.loads(line[5:]), received)
        return data[pos:]

    def _message(self, message: dict[str, Any], received: int) -> None:
        if message.get("type") == "subscribed":
            channel, cursor = message["channel"], message["cursor"]
            self.cursors[channel] = cursor
            self.last.setdefault(channel, int(cursor.rpartition(":")[2]))
            waiter = self.waiters.pop(("subscribed", channel), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
            return
        super()._message(message, received)
