"""The WebSocket's channel messages: ping, subscribe, unsubscribe, presence."""

from __future__ import annotations

from server.hub.messages import Ping, Presence, Subscribe, Unsubscribe
from server.hub.session_base import SessionBase
from server.kernel.realtime_errors import ProtocolError


class ChannelMessages(SessionBase):
    __slots__ = ()

    async def on_ping(self, message: Ping) -> None:
        self.reply({"type": "pong", "data": message.data}, message)

    async def on_subscribe(self, message: Subscribe) -> None:
        ref = message.id if message.id is not None else "subscribe"
        await self.subscribe(message.channel, message.since, ref, message.id)

    async def on_unsubscribe(self, message: Unsubscribe) -> None:
        ref = message.id if message.id is not None else "unsubscribe"
        await self.hub.unsubscribe(self.connection, message.channel, ref)
        self.reply({"type": "unsubscribed", "channel": message.channel}, message)

    async def on_presence(self, message: Presence) -> None:
        ref = message.id if message.id is not None else "presence"
        channel = self.hub.parse_channel(message.channel, ref)
        self.hub.check(self.hub.channels.check_subscribe, self.connection.principal, channel, ref)
        if not channel.namespace.presence:
            raise ProtocolError(
                "presence_disabled", f"{channel.namespace.name} channels have no presence", ref
            )
        members = await self.hub.presence.members(message.channel)
        self.reply({"type": "presence", "channel": message.channel, "members": members}, message)
