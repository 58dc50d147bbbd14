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
