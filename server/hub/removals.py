"""Which subscriptions a private channel's removal ends, found without scanning more than
needed: by user for named members, among the channel's subscribers when it was deleted.
Only "member" grants end (a token's grant is the application's; admins need none), and
never one still being made (subscribe() looks again itself). Subscriptions.on_removed and
recheck_members act on what these say."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from server.hub.connection import Connection
from server.hub.subscription import Subscription

log = logging.getLogger(__name__)

Subscribers = Mapping[str, Mapping[Connection, Subscription]]


def removed_connections(
    event: Mapping[str, Any],
    subscribers: Subscribers,
    users: Mapping[int, Collection[Connection]],
    subscribing: Collection[Subscription],
) -> list[Connection]:
    """The connections whose subscription to the event's channel the event ends:
    `{"channel", "all": true}` (deleted) or `{"channel", "user_ids": [...]}`."""
    name = str(event.get("channel"))
    if event.get("all") is True:
        found = list(subscribers.get(name, {}).items())
    else:
        found = []
        for user_id in event.get("user_ids") or ():
            for connection in list(users.get(int(user_id), ())):
                subscription = connection.subscriptions.get(name)
                if subscription is not None:
                    found.append((connection, subscription))
    return [
        connection
        for connection, subscription in found
        if subscription.grant == "member" and subscription not in subscribing
    ]


def member_subscriptions(
    subscribers: Subscribers, subscribing: Collection[Subscription]
) -> dict[tuple[str, int], list[Connection]]:
    """Every "member" subscription, by (channel, user): one lookup answers each group."""
    pairs: dict[tuple[str, int], list[Connection]] = {}
    for name, channel_subscribers in list(subscribers.items()):
        for connection, subscription in list(channel_subscribers.items()):
            if subscription.grant == "member" and subscription not in subscribing:
                pairs.setdefault((name, connection.user_id), []).append(connection)
    return pairs


async def repeat(interval: float, action: Callable[[], Awaitable[Any]], what: str) -> None:
    """`action()` every `interval` seconds until cancelled; a failure is logged, and the
    next round comes all the same (this is the safety net for missed removals)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await action()
        except Exception:
            log.exception("%s failed", what)
