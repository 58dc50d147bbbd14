"""A data channel labelled with a hub channel name (e.g. `public:lobby`): what the peer
sends is published on that channel, and the channel's publications come down the data
channel, with the same permission checks as a WebSocket subscription (a private channel's
members only; a member removed meanwhile gets an `unsubscribed` message and the data
channel closes). The bridge is a hub connection like any other, so fan-out, ordering and
slow-consumer rules apply to it."""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiortc import RTCDataChannel

from server.hub.connection import Connection
from server.hub.delivery import Delivery
from server.hub.hub import Hub
from server.hub.protocol import error_frame
from server.hub.ratelimit import TokenBucket
from server.hub.subscription import Subscription
from server.kernel.jsonutil import MAX_JSON_DEPTH, is_depth_error, too_deep
from server.kernel.principal import Principal
from server.kernel.realtime_errors import ChannelError, ProtocolError
from server.kernel.settings import Settings

TOO_DEEP = f"a message nests arrays and objects at most {MAX_JSON_DEPTH} levels deep"
log = logging.getLogger(__name__)


class DataChannelConnection(Connection):
    """Delivers hub messages into a data channel (SCTP has its own flow control)."""

    kind = "webrtc"
    __slots__ = ("bytes_sent", "channel")

    def __init__(
        self, principal: Principal, settings: Settings, hub: Hub, channel: RTCDataChannel
    ) -> None:
        super().__init__(principal, settings, hub.flusher.mark_dirty)
        self.channel = channel
        self.bytes_sent = 0

    def deliver(self, delivery: Delivery) -> None:
        if not delivery.binary:
            self._enqueue(delivery.payload)

    def flush(self) -> None:
        self._dirty = False
        queue = self._take_queue()
        if self.closed or self.channel.readyState != "open":
            return
        for payload in queue:
            self.channel.send(payload.decode())
            self.bytes_sent += len(payload)
        self.sent += len(queue)

    async def _close(self, code: int, reason: str) -> None:
        self.channel.close()


class Bridge:
    def __init__(
        self, hub: Hub, principal: Principal, channel: RTCDataChannel, settings: Settings
    ) -> None:
        self.hub = hub
        self.name = channel.label
        self.channel = channel
        self.connection = DataChannelConnection(principal, settings, hub, channel)
        self.publishes = TokenBucket(settings.PUBLISH_RATE, settings.PUBLISH_BURST)
        self.bytes_received = 0
        # Listening from the start: the peer may send as soon as the channel is open, while
        # the permission check and subscription are still running. One task publishes the
        # messages in the order they came (the data channel is ordered, so is the channel).
        self.inbox: asyncio.Queue[str | bytes] = asyncio.Queue()
        channel.on("message", self.inbox.put_nowait)
        # The peer may close the channel and keep its connection: the bridge ends with it.
        self._closing: asyncio.Future[None] | None = None
        channel.on("close", self._on_close)

    async def open(self) -> None:
        """Check permissions, subscribe; on refusal the data channel is closed with a
        last message saying why."""
        principal = self.connection.principal
        try:
            channel = self.hub.parse_channel(self.name)
            # Both before subscribing: the rules (members, too) of the channel, then publish
            # as it would be allowed once subscribed by the same grant.
            grant = await self.hub.subscriptions.check_subscribe(principal, channel)
            self.hub.subscriptions.access.publish(
                principal, channel, Subscription(self.name, grant.how, grant.publish)
            )
            self.hub.register(self.connection)
            result = await self.hub.subscribe(self.connection, self.name, None)
        except ChannelError as error:
            self.channel.remove_listener("message", self.inbox.put_nowait)
            self._refuse(error.code, error.message)
            return
        except ProtocolError as error:
            self.channel.remove_listener("message", self.inbox.put_nowait)
            self._refuse(error.code, error.message)
            return
        if self.connection.closed:  # the channel closed while subscribing
            await self.hub.unregister(self.connection)
            return
        self.hub.activate(self.connection, result.subscription)
        self.connection.spawn(self._publish_all())

    def _refuse(self, code: str, message: str) -> None:
        self._send_error(code, message)
        self.channel.close()

    async def _publish_all(self) -> None:
        while True:
            await self._publish(await self.inbox.get())

    async def _publish(self, message: str | bytes) -> None:
        self.bytes_received += len(message.encode() if isinstance(message, str) else message)
        if self.name not in self.connection.subscriptions:  # removed from a private channel
            self._send_error("not_subscribed", f"no longer subscribed to {self.name}")
            return
        if not self.publishes.take():
            self._send_error("rate_limited", "publishing too fast; slow down")
            return
        text = message.decode(errors="replace") if isinstance(message, bytes) else message
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            if is_depth_error(error):
                self._send_error("too_deep", TOO_DEEP)
                return
            value = text  # plain text is published as a JSON string
        if too_deep(text, value):
            self._send_error("too_deep", TOO_DEEP)
            return
        data = orjson.dumps(value)
        try:
            await self.hub.publish(self.name, data, self.connection.sender)
        except Exception as error:  # Redis down: tell the peer, keep the channel
            log.warning("bridge publish on %s failed: %s", self.name, error)
            self._send_error("unavailable", "could not publish; retry")

    def _send_error(self, code: str, message: str) -> None:
        if self.channel.readyState == "open":
            self.channel.send(error_frame(code, message).decode())

    def _on_close(self) -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self.close())

    async def close(self) -> None:
        await self.hub.unregister(self.connection)
