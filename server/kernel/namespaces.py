"""Channel namespaces: who may subscribe and publish in each, built-in and configured.

The CHANNEL_NAMESPACES setting is parsed here, so that settings can validate it without
importing the realtime hub (server/hub/channels.py applies the rules).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

Who = Literal["owner", "user", "admin", "nobody"]
WHO = ("owner", "user", "admin", "nobody")


# A user's own channel carries their notifications, and a burst of them (the outbox and the
# retried requests after a server crash: hundreds in a second) must stay recoverable by a
# subscriber that reconnects. Redis keeps only what was published in the last HISTORY_TTL
# seconds, so the larger bound costs memory only for the users who got that many.
USER_HISTORY_SIZE = 2000

# `private` is not an option: member lists are managed for the `private` namespace only
# (REST /realtime/private-channels); naming it here changes its other options.
OPTIONS = ("subscribe", "publish", "presence", "join_leave", "history_size", "token")


@dataclass(frozen=True)
class Namespace:
    name: str
    subscribe: Who = "user"
    publish: Who = "user"
    presence: bool = False
    join_leave: bool = False
    history_size: int | None = None  # publications kept per channel; None: HISTORY_SIZE
    # Channels with member lists (server/hub/private.py): besides `subscribe`/`publish`,
    # a user must be a member (admins need not be).
    private: bool = False
    # Subscription tokens (server/auth/subscription_tokens.py) are accepted here: a valid
    # token for the channel grants subscribe (and publish if it says so) whatever the rest.
    token: bool = False


BUILT_IN = {
    "public": Namespace("public", "user", "user", presence=True, join_leave=True),
    "user": Namespace("user", "owner", "nobody", history_size=USER_HISTORY_SIZE),
    "admin": Namespace("admin", "admin", "admin"),
    "system": Namespace("system", "admin", "nobody"),
    # Members only: `private:<name>` channels are created over REST, their owner and admins
    # manage the members (handlers/private_channels.py).
    "private": Namespace("private", "user", "user", presence=True, private=True),
}


def history_sizes(namespaces: dict[str, Namespace]) -> dict[str, int]:
    """The namespaces whose channels keep a history size of their own."""
    return {
        name: namespace.history_size
        for name, namespace in namespaces.items()
        if namespace.history_size is not None
    }


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
        if not isinstance(options, dict) or set(options) - set(OPTIONS):
            raise ValueError(f"namespace {name}: options are {', '.join(OPTIONS)}")
        # A built-in namespace named here keeps what is not named (`{"user": {"history_size":
        # 5000}}` must not open everyone's user channels to every user).
        base = BUILT_IN.get(name, Namespace(name))
        for key in ("subscribe", "publish"):
            if options.get(key, getattr(base, key)) not in WHO:
                raise ValueError(f"namespace {name}: {key} must be one of {', '.join(WHO)}")
        size = options.get("history_size", base.history_size)
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise ValueError(f"namespace {name}: history_size must be an integer >= 0")
        for key in ("presence", "join_leave", "token"):
            if not isinstance(options.get(key, False), bool):
                raise ValueError(f"namespace {name}: {key} must be true or false")
        namespaces[name] = Namespace(
            name,
            options.get("subscribe", base.subscribe),
            options.get("publish", base.publish),
            options.get("presence", base.presence),
            options.get("join_leave", base.join_leave),
            size,
            base.private,
            options.get("token", base.token),
        )
    return namespaces
