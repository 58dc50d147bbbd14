"""Fan-out: this node's subscriptions by channel, and the delivery of a channel's messages to
them. One bus message becomes one Delivery for all subscribers: no await and no encoding per
subscriber, and duplicates (a publication already replayed from history) are dropped by
offset. While a subscription is recovering (subscribing from a cursor, or being caught up
from history after the bus resubscribed: recover_all), its live publications wait, in order.
recover_all passes over subscriptions still subscribing; one whose history read began before
a resubscription is caught up when it goes live (activate) instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from redis.exceptions import RedisError

from server.hub import wire
from server.hub.bus import RETRY_DELAY
from server.hub.catchup import catch_up
from server.hub.connection import Connection
from server.hub.delivery import Delivery
from server.hub.flusher import BUSY_FLUSH, Flusher
from server.hub.history import History
from server.hub.position import Position
from server.hub.protocol import encode
from server.hub.subscription import Subscription

log = logging.getLogger(__name__)


class Fanout:
    def __init__(self, flusher: Flusher, history: History) -> None:
        self.subscribers: dict[str, dict[Connection, Subscription]] = {}
        self.delivered = 0
        self.gaps = 0  # `gap` frames sent by catching up after a resubscription
        self._flusher = flusher
        self._history = history
        # Subscriptions being caught up after a resubscription, and by which one.
        self._resyncing: dict[Subscription, tuple[Connection, int]] = {}
        self._generation = 0

    def add(self, connection: Connection, subscription: Subscription) -> None:
        connection.subscriptions[subscription.channel] = subscription
        self.subscribers.setdefault(subscription.channel, {})[connection] = subscription

    def remove(self, connection: Connection, channel: str) -> None:
        subscription = connection.subscriptions.pop(channel, None)
        if subscription is not None:
            self._resyncing.pop(subscription, None)
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

    @property
    def resubscriptions(self) -> int:
        """How many times the bus resubscribed (recover_all). Subscribing notes it in the
        subscription right before reading the history (Subscription.resubscriptions)."""
        return self._generation

    def activate(self, connection: Connection, subscription: Subscription) -> None:
        """Deliver what arrived during recovery (dropping what recovery already had). If the
        bus resubscribed since the subscription's history read began, it may have missed
        publications after that read: keep holding, and catch up from history first."""
        generation = self._generation
        if (
            subscription.resubscriptions != generation
            and connection.subscriptions.get(subscription.channel) is subscription
        ):
            self._resyncing[subscription] = (connection, generation)
            since = Position(subscription.epoch, subscription.offset)
            members = [(connection, subscription)]
            connection.spawn(self._catch_up(subscription.channel, since, members, generation))
            return
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

    def recover_all(self) -> Coroutine[Any, Any, None]:
        """After the bus resubscribed (called before it reads any message): hold back the
        live publications of every subscription, then (the coroutine returned) catch each
        one up from the channel's history from its last delivered position, and release
        what was held. A subscription whose catching up meets another outage stays held
        and is caught up after the next resubscription. Subscriptions still subscribing are
        passed over (their position is not known yet): activate() catches them up."""
        self._generation += 1
        for subscribers in self.subscribers.values():
            for connection, subscription in subscribers.items():
                if subscription.buffer is None or subscription in self._resyncing:
                    if subscription.buffer is None:
                        subscription.buffer = []
                    self._resyncing[subscription] = (connection, self._generation)
        return self._recover(self._generation)

    async def _recover(self, generation: int) -> None:
        groups: dict[tuple[str, str, int], list[tuple[Connection, Subscription]]] = {}
        for subscription, (connection, wanted) in list(self._resyncing.items()):
            if wanted == generation:
                key = (subscription.channel, subscription.epoch, subscription.offset)
                groups.setdefault(key, []).append((connection, subscription))
        for (name, epoch, offset), members in groups.items():
            await self._catch_up(name, Position(epoch, offset), members, generation)

    async def _catch_up(
        self,
        name: str,
        since: Position,
        members: list[tuple[Connection, Subscription]],
        generation: int,
    ) -> None:
        """Give `members` (all at `since` on channel `name`) what the history holds after
        it, a `gap` first where it no longer holds all, then what was held back."""
        missed = await self._missed(name, since, members, generation)
        if missed is not None:
            gap, replay = missed
            for connection, subscription in members:
                if self._resyncing.get(subscription) != (connection, generation):
                    continue  # gone, or a newer resubscription catches it up
                del self._resyncing[subscription]
                if gap is not None:
                    self.gaps += 1
                    subscription.epoch, subscription.offset = gap.epoch, gap.offset
                    frame = encode({"type": "gap", "channel": name, "cursor": gap.cursor})
                    connection.deliver(
                        Delivery(
                            frame,
                            event="gap",
                            epoch=gap.epoch,
                            offset=gap.offset,
                            cursor=gap.cursor,
                        )
                    )
                held, subscription.buffer = subscription.buffer or [], None
                for delivery in [*replay, *held]:
                    self._deliver_one(
                        connection, subscription, delivery.epoch, delivery.offset, delivery
                    )

    async def _missed(
        self,
        name: str,
        since: Position,
        members: list[tuple[Connection, Subscription]],
        generation: int,
    ) -> tuple[Position | None, list[Delivery]] | None:
        """catch_up(), retried while Redis fails (the subscribers stay held meanwhile); None
        when none of `members` is this generation's to catch up any more."""
        while any(self._resyncing.get(s) == (c, generation) for c, s in members):
            try:
                return await catch_up(self._history, name, since)
            except (RedisError, OSError) as error:
                log.info("catching up %s failed (%s); retrying", name, error)
                await asyncio.sleep(RETRY_DELAY)
        return None
