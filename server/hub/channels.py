"""Channel names and permissions by namespace.

A channel is `namespace:name` (`public:lobby`, `user:42`) or a bare namespace (`system`).
Built-in namespaces (more from the CHANNEL_NAMESPACES setting):

    namespace  subscribe        publish from clients  presence  join/leave
    public     any user         any user              yes       yes
    user       its owner, admins  nobody (server only)  no        no
    admin      admins           admins                no        no
    system     admins           nobody (server only)  no        no

`user:<id>` takes direct messages (the `message` type with `to`) and notifications.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from server.auth.principal import Principal, Role

Who = Literal["owner", "user", "admin", "nobody"]
WHO = ("owner", "user", "admin", "nobody")

CHANNEL = re.compile(r"(?P<ns>[a-z][a-z0-9_-]{0,31})(?::(?P<name>[A-Za-z0-9_.@-]{1,128}))?")
MAX_CHANNEL_LENGTH = 161


@dataclass(frozen=True)
class Namespace:
    name: str
    subscribe: Who = "user"
    publish: Who = "user"
    presence: bool = False
    join_leave: bool = False


BUILT_IN = {
    "public": Namespace("public", "user", "user", presence=True, join_leave=True),
    "user": Namespace("user", "owner", "nobody"),
    "admin": Namespace("admin", "admin", "admin"),
    "system": Namespace("system", "admin", "nobody"),
}


class ChannelError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_namespaces(text: str) -> dict[str, Namespace]:
    """The CHANNEL_NAMESPACES setting (JSON) merged over the built-ins."""
    namespaces = dict(BUILT_IN)
    if not text.strip():
        return namespaces
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ValueError("must be a JSON object of namespace -> options")
    for name, options in raw.items():
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", name):
            raise ValueError(f"bad namespace name {name!r}")
        if not isinstance(options, dict) or set(options) - {
            "subscribe",
            "publish",
            "presence",
            "join_leave",
        }:
            raise ValueError(
                f"namespace {name}: options are subscribe, publish, presence, join_leave"
            )
        for key in ("subscribe", "publish"):
            if options.get(key, "user") not in WHO:
                raise ValueError(f"namespace {name}: {key} must be one of {', '.join(WHO)}")
        namespaces[name] = Namespace(
            name,
            options.get("subscribe", "user"),
            options.get("publish", "user"),
            bool(options.get("presence", False)),
            bool(options.get("join_leave", False)),
        )
    return namespaces


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

    def check_subscribe(self, principal: Principal, channel: Channel) -> None:
        if not self._allowed(channel.namespace.subscribe, principal, channel):
            raise ChannelError("forbidden", f"you may not subscribe to {channel.name}")

    def check_publish(self, principal: Principal, channel: Channel) -> None:
        if not self._allowed(channel.namespace.publish, principal, channel):
            raise ChannelError("forbidden", f"you may not publish to {channel.name}")
