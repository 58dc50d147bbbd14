"""The channel messages: ping, subscribe, unsubscribe, presence."""

from __future__ import annotations

from server.hub.handler import Session
from server.hub.messages import Ping, Presence, Subscribe, Unsubscribe
from server.kernel.realtime_errors import ProtocolError


async def on_ping(session: Session, message: Ping) -> None:
    session.reply({"type": "pong", "data": message.data}, message)


async def on_subscribe(session: Session, message: Subscribe) -> None:
    ref = message.id if message.id is not None else "subscribe"
    await session.subscribe(message.channel, message.since, ref, message.id, message.token)


async def on_unsubscribe(session: Session, message: Unsubscribe) -> None:
    ref = message.id if message.id is not None else "unsubscribe"
    await session.hub.unsubscribe(session.connection, message.channel, ref)
    session.reply({"type": "unsubscribed", "channel": message.channel}, message)


async def on_presence(session: Session, message: Presence) -> None:
    ref = message.id if message.id is not None else "presence"
    hub = session.hub
    channel = hub.parse_channel(message.channel, ref)
    connection = session.connection
    await hub.subscriptions.check_presence(connection, connection.principal, channel, ref)
    if not channel.namespace.presence:
        raise ProtocolError(
            "presence_disabled", f"{channel.namespace.name} channels have no presence", ref
        )
    members = await hub.presence.members(message.channel)
    session.reply({"type": "presence", "channel": message.channel, "members": members}, message)
