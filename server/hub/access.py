"""Who may subscribe, publish and see presence, with what only the hub can look up: a
private channel's members (private.py) and subscription tokens
(server/auth/subscription_tokens.py). The namespace's own rules are channels.py's.

Subscribing decides once, and the subscription remembers how it was granted
(`Subscription.grant`): "rules" (the namespace's rules; admins), "member" (a private
channel's member: ended on every node when the member is removed) or "token" (a
subscription token; `Subscription.publish` says whether it lets the client publish).
Publishing and presence then need no lookup for a channel the client is subscribed to: on
a private channel a member publishes once subscribed (the subscription is the proof of
membership, and ends with it), so the publish path stays synchronous and costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.auth.subscription_tokens import SubscriptionTokens
from server.hub.channels import Channel, Channels
from server.hub.private import Membership
from server.hub.subscription import Subscription
from server.kernel.principal import Principal, Role
from server.kernel.realtime_errors import ChannelError


@dataclass(frozen=True)
class Grant:
    how: str  # "rules", "member" or "token"
    publish: bool = False  # a token's `publish` claim


class ChannelAccess:
    def __init__(
        self, channels: Channels, membership: Membership, tokens: SubscriptionTokens
    ) -> None:
        self.channels = channels
        self.membership = membership
        self.tokens = tokens

    async def subscribe(self, principal: Principal, channel: Channel, token: object) -> Grant:
        """May `principal` subscribe (with `token`, when not None)? Refusals: ChannelError."""
        if token is not None:
            if not channel.namespace.token:
                raise ChannelError(
                    "token_not_accepted",
                    f"{channel.namespace.name} channels do not accept subscription tokens",
                )
            grant = self.tokens.verify(token, channel=channel.name, user_id=principal.user_id)
            return Grant("token", grant.publish)
        return await self.by_rules("subscribe", principal, channel)

    async def by_rules(self, action: str, principal: Principal, channel: Channel) -> Grant:
        """The namespace's rule for `action`, then (private channels) membership."""
        self.channels.check_rules(action, principal, channel)
        if not channel.namespace.private or principal.is_at_least(Role.admin):
            return Grant("rules")
        if not await self.membership.is_member(channel.name, principal.user_id):
            raise ChannelError("forbidden", f"{channel.name} is for its members only")
        return Grant("member")

    async def presence(
        self, principal: Principal, channel: Channel, subscription: Subscription | None
    ) -> None:
        """Presence is for those who may subscribe; a subscription already proves it."""
        if subscription is None:
            await self.by_rules("subscribe", principal, channel)

    def publish(
        self, principal: Principal, channel: Channel, subscription: Subscription | None
    ) -> None:
        """May `principal` publish, given its subscription to the channel (if any)?
        Synchronous: a member of a private channel must be subscribed to publish there."""
        if subscription is not None:
            if subscription.grant == "token" and subscription.publish:
                return
            if subscription.grant == "member":
                self.channels.check_rules("publish", principal, channel)
                return
        try:
            self.channels.check_publish(principal, channel)
        except ChannelError:
            if channel.namespace.private and not principal.is_at_least(Role.admin):
                raise ChannelError(
                    "forbidden",
                    f"{channel.name} is for its members only: subscribe to it before publishing",
                ) from None
            raise
