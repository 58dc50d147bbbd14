"""Channel names and permissions by namespace.

A channel is `namespace:name` (`public:lobby`, `user:42`) or a bare namespace (`system`).
Built-in namespaces (more from the CHANNEL_NAMESPACES setting):

    namespace  subscribe        publish from clients  presence  join/leave
    public     any user         any user              yes       yes
    user       its owner, admins  nobody (server only)  no        no
    admin      admins           admins                no        no
    system     admins           nobody (server only)  no        no
    private    members, admins  members               yes       no

`user:<id>` takes direct messages (the `message` type with `to`) and notifications.
The checks here are pure and synchronous: they know the namespace's rules, not a private
channel's members nor a subscription token. So they refuse private channels to everyone
but admins; the hub's asynchronous checks (server/hub/access.py) look the members up, and
accept tokens, before they apply the namespace's rules with `check_rules`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.kernel.namespaces import Namespace, Who
from server.kernel.principal import Principal, Role
from server.kernel.realtime_errors import ChannelError

CHANNEL = re.compile(r"(?P<ns>[a-z][a-z0-9_-]{0,31})(?::(?P<name>[A-Za-z0-9_.@-]{1,128}))?")
MAX_CHANNEL_LENGTH = 161


@dataclass(frozen=True)
class Channel:
    name: str
    namespace: Namespace
    key: str  # the part after the colon ("" for a bare namespace)


class Channels:
    """Parses channel names and decides who may do what with them."""

    def __init__(self, namespaces: dict[str, Namespace]) -> None:
        self.namespaces = namespaces

    def parse(self, name: object) -> Channel:
        if not isinstance(name, str) or not name or len(name) > MAX_CHANNEL_LENGTH:
            raise ChannelError("bad_channel", "channel must be a string of 1-161 characters")
        match = CHANNEL.fullmatch(name)  # not match(): `$` would allow a trailing newline
        if match is None:
            raise ChannelError(
                "bad_channel",
                "channel must look like namespace:name (letters, digits and _ . @ - only)",
            )
        namespace = self.namespaces.get(match["ns"])
        if namespace is None:
            raise ChannelError("unknown_namespace", f"no namespace {match['ns']!r}")
        key = match["name"] or ""
        if namespace.name == "user" and not key.isdigit():
            raise ChannelError("bad_channel", "user channels are user:<numeric id>")
        return Channel(name, namespace, key)

    @staticmethod
    def _allowed(who: Who, principal: Principal, channel: Channel) -> bool:
        if who == "nobody":
            return False
        if principal.is_at_least(Role.admin):
            return True
        if who == "admin":
            return False
        if who == "owner":
            return channel.key == str(principal.user_id)
        return True

    def check_rules(self, action: str, principal: Principal, channel: Channel) -> None:
        """The namespace's rule for `action` ("subscribe" or "publish") alone: a private
        channel's members are not looked at here."""
        who: Who = getattr(channel.namespace, action)
        if not self._allowed(who, principal, channel):
            raise ChannelError("forbidden", f"you may not {action} to {channel.name}")

    @staticmethod
    def _members_only(principal: Principal, channel: Channel) -> None:
        if channel.namespace.private and not principal.is_at_least(Role.admin):
            raise ChannelError("forbidden", f"{channel.name} is for its members only")

    def check_subscribe(self, principal: Principal, channel: Channel) -> None:
        self._members_only(principal, channel)
        self.check_rules("subscribe", principal, channel)

    def check_publish(self, principal: Principal, channel: Channel) -> None:
        self._members_only(principal, channel)
        self.check_rules("publish", principal, channel)
