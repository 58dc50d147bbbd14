"""A data channel labelled with a hub channel name (e.g. `public:lobby`): what the peer
sends is published on that channel, and the channel's publications come down the data
channel, with the same permission checks as a WebSocket subscription (a private channel's
members only; a member removed meanwhile gets an `unsubscribed` message and the data
channel closes). The bridge is a hub connection like any other, so fan-out, ordering and
slow-consumer rules apply to it.

A data channel whose `protocol` is a JSON object asks for the resume protocol
(docs/PROTOCOL.md, WebRTC): `{"since": "<epoch>:<offset>"}` subscribes from that cursor, so a
client back on a new peer connection after its network changed gets what was published
meanwhile; `{}` only asks where the channel stands. The first message is then `subscribed
{channel, cursor, recovered, replayed}`, then the `replayed` publications, then live ones.
aiortc has no ICE restart: a new peer connection is the only way back."""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiortc import RTCDataChannel

from server.hub.connection import Connection
from server.hub.delivery import Delivery
from server.hub.hub import Hub
from server.hub.position import parse_cursor
from server.hub.protocol import encode, error_frame
from server.hub.ratelimit import TokenBucket
from server.hub.subscription import SubscribeResult, Subscription
from server.kernel.jsonutil import MAX_JSON_DEPTH, is_depth_error, too_deep
from server.kernel.principal import Principal
from server.kernel.realtime_errors import ChannelError, ProtocolError
from server.kernel.settings import Settings

# The SCTP data channel open message allows a 65535-byte protocol; a resume request needs
# a cursor (at most 32 + 1 + 18 characters) and a little JSON around it.
MAX_PROTOCOL_BYTES = 256
TOO_DEEP = f"a message nests arrays and objects at most {MAX_JSON_DEPTH} levels deep"
log = logging.getLogger(__name__)


class DataChannelConnection(Connection):
    """Delivers hub messages into a data channel (SCTP has its own flow control)."""

    kind = "webrtc"
    __slots__ = ("bytes_sent", "channel", "hub")

    def __init__(
        self, principal: Principal, settings: Settings, hub: Hub, channel: RTCDataChannel
    ) -> None:
        super().__init__(principal, settings, hub.flusher.mark_dirty)
        self.channel = channel
        self.bytes_sent = 0
        self.hub = hub

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

    def replay(self, result: SubscribeResult) -> None:
        """The resume protocol's `subscribed` message and the publications missed, sent
        before the subscription goes live (nothing else of it is queued yet). Straight into
        the channel, not through the queue: a replay may be longer than SEND_QUEUE_MESSAGES
        (a `user:` channel keeps 2000), and SCTP buffers it."""
        head = {
            "type": "subscribed",
            "channel": result.subscription.channel,
            "cursor": result.position.cursor,
            "recovered": result.recovered,
            "replayed": len(result.replay),
        }
        self.flush()
        if self.closed or self.channel.readyState != "open":
            return
        for payload in (encode(head), *(delivery.payload for delivery in result.replay)):
            self.channel.send(payload.decode())
            self.bytes_sent += len(payload)
            self.sent += 1

    async def _close(self, code: int, reason: str) -> None:
        """Closed by the server (shutdown, slow consumer, revoked session): leave the hub
        now. The data channel's own close needs the peer's answer, which a peer whose
        network is gone never sends (shutdown would wait for it, the channel would stay
        subscribed until ICE consent expires). A last word queued (`unsubscribed`) goes
        out first."""
        queue = self._take_queue()
        if self.channel.readyState == "open":
            for payload in queue:
                self.channel.send(payload.decode())
        self.channel.close()
        await self.hub.unregister(self)


def resume_request(protocol: str) -> tuple[bool, str | None]:
    """What a bridged data channel's `protocol` asks: (the resume protocol?, the cursor to
    resume from). Empty: a plain bridge. ProtocolError for anything but a small JSON object
    whose only key is `since`, a cursor or null."""
    if not protocol:
        return False, None
    if len(protocol.encode()) > MAX_PROTOCOL_BYTES:
        raise ProtocolError("too_large", f"the protocol is at most {MAX_PROTOCOL_BYTES} bytes")
    try:
        request = orjson.loads(protocol)
    except orjson.JSONDecodeError:
        request = None
    if not isinstance(request, dict):
        raise ProtocolError("invalid", 'the protocol must be a JSON object: {"since": cursor}')
    unknown = sorted(set(request) - {"since"})
    if unknown:
        raise ProtocolError("invalid", f"unknown protocol fields: {', '.join(unknown)[:100]}")
    since = request.get("since")
    if since is None:
        return True, None
    if not isinstance(since, str) or parse_cursor(since) is None:
        raise ProtocolError("bad_cursor", "since must be a cursor from a publication")
    return True, since


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
            resume, since = resume_request(self.channel.protocol)
            channel = self.hub.parse_channel(self.name)
            # Both before subscribing: the rules (members, too) of the channel, then publish
            # as it would be allowed once subscribed by the same grant.
            grant = await self.hub.subscriptions.check_subscribe(principal, channel)
            self.hub.subscriptions.access.publish(
                principal, channel, Subscription(self.name, grant.how, grant.publish)
            )
            self.hub.register(self.connection)
            result = await self.hub.subscribe(self.connection, self.name, since)
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
        if resume:
            self.connection.replay(result)
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
