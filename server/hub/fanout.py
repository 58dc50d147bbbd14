"""Fan-out: this node's subscriptions by channel, and the delivery of a channel's messages to
them. One bus message becomes one Delivery for all subscribers: no await and no encoding per
subscriber, and duplicates (a publication already replayed from history) are dropped by
offset. While a subscription is recovering, its live publications wait, in order.
"""

from __future__ import annotations

from redis.exceptions import RedisError

from server.hub import wire
from server.hub.connection import Connection
from server.hub.delivery import Delivery
from server.hub.flusher import BUSY_FLUSH, Flusher
from server.hub.history import History
from server.hub.position import Position
from server.hub.protocol import encode
from server.hub.subscription import Subscription


class Fanout:
    def __init__(self, flusher: Flusher, history: History) -> None:
        self.subscribers: dict[str, dict[Connection, Subscription]] = {}
        self.delivered = 0
        self._flusher = flusher
        self._history = history

    def add(self, connection: Connection, subscription: Subscription) -> None:
        connection.subscriptions[subscription.channel] = subscription
        self.subscribers.setdefault(subscription.channel, {})[connection] = subscription

    def remove(self, connection: Connection, channel: str) -> None:
        connection.subscriptions.pop(channel, None)
        subscribers = self.subscribers.get(channel)
        if subscribers is not None:
            subscribers.pop(connection, None)
            if not subscribers:
                del self.subscribers[channel]

    def on_message(self, channel: str, message: bytes) -> None:
        """A bus message for `channel`, to every local subscriber."""
        subscribers = self.subscribers.get(channel)
        if not subscribers:
            return
        delivery = wire.parse(message)
        if delivery.cursor is None:  # join/leave or binary: no offset, not in history
            for connection, subscription in subscribers.items():
                if subscription.buffer is None:
                    connection.deliver(delivery)
            return
        epoch, offset = delivery.epoch, delivery.offset
        deliver_one = self._deliver_one
        for connection, subscription in subscribers.items():
            deliver_one(connection, subscription, epoch, offset, delivery)
        if len(subscribers) >= BUSY_FLUSH:
            self._flusher.large_fanout()

    def activate(self, connection: Connection, subscription: Subscription) -> None:
        """Deliver what arrived during recovery (dropping what recovery already had)."""
        held, subscription.buffer = subscription.buffer or [], None
        for delivery in held:
            self._deliver_one(connection, subscription, delivery.epoch, delivery.offset, delivery)

    def _deliver_one(
        self,
        connection: Connection,
        subscription: Subscription,
        epoch: str,
        offset: int,
        delivery: Delivery,
    ) -> None:
        if subscription.buffer is not None:  # recovering: hold back, in order
            subscription.buffer.append(delivery)
            return
        if epoch == subscription.epoch and offset <= subscription.offset:
            return  # already given (from history, or a duplicate)
        subscription.epoch = epoch
        subscription.offset = offset
        self.delivered += 1
        connection.deliver(delivery)

    async def recover_all(self) -> None:
        """After the bus reconnected: give every subscriber what it missed meanwhile, or a
        `gap` event when history no longer has it."""
        for name, subscribers in list(self.subscribers.items()):
            positions = {(s.epoch, s.offset) for s in subscribers.values() if s.buffer is None}
            for epoch, offset in positions:
                try:
                    recovery = await self._history.recover(name, Position(epoch, offset))
                except (RedisError, OSError):
                    return
                now = recovery.position
                for connection, subscription in list(subscribers.items()):
                    if (subscription.epoch, subscription.offset) != (epoch, offset):
                        continue
                    if not recovery.recovered:
                        gap = {"type": "gap", "channel": name, "cursor": now.cursor}
                        connection.send(encode(gap), event="gap")
                        subscription.epoch, subscription.offset = now.epoch, now.offset
                        continue
                    for delivery in recovery.replay:
                        self._deliver_one(
                            connection, subscription, delivery.epoch, delivery.offset, delivery
                        )
