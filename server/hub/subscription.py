"""A client's place in a channel, and what subscribing hands back to its transport."""

from __future__ import annotations

from dataclasses import dataclass

from server.hub.delivery import Delivery
from server.hub.position import Position


class Subscription:
    """The last offset the client was given (to drop duplicates and keep order) and, while
    its history is being recovered, the live publications held back. `resubscriptions`: the
    bus's count of them when its history read began (Fanout.activate compares). `grant`: how
    subscribing was allowed (server/hub/access.py: "rules", "member", "token"); `publish`:
    a subscription token also let the client publish here."""

    __slots__ = ("buffer", "channel", "epoch", "grant", "offset", "publish", "resubscriptions")

    def __init__(self, channel: str, grant: str = "rules", publish: bool = False) -> None:
        self.channel = channel
        self.grant = grant
        self.publish = publish
        self.epoch = ""
        self.offset = 0
        self.buffer: list[Delivery] | None = []
        self.resubscriptions = 0

    @property
    def cursor(self) -> str:
        return f"{self.epoch}:{self.offset}"


@dataclass
class SubscribeResult:
    """A subscription held back until the transport has replayed what was missed."""

    subscription: Subscription
    position: Position  # the channel's position now
    recovered: bool  # False: the cursor asked for is beyond the history
    replay: list[Delivery]  # the publications after that cursor, oldest first
