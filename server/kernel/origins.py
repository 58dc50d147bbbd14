"""Origins (RFC 6454) and the allowlist of CORS_ALLOWED_ORIGINS: parsed once at startup,
compared whole (scheme, host and port, the scheme's default port implied). Used by CORS
(server/kernel/cors.py) and the WebSocket Origin check (handlers/http.py); imports nothing
of ours, so the settings can validate the list with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

Origin = tuple[str, str, int | None]


class _Request(Protocol):
    """What `Origins.allows` reads of an aiohttp request."""

    @property
    def scheme(self) -> str: ...

    @property
    def host(self) -> str: ...


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def parse_origin(text: str) -> Origin | None:
    """(scheme, host, port) with the scheme's default port made explicit; None when `text`
    names no host ("null", garbage)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname, port if port is not None else _DEFAULT_PORTS.get(scheme)


@dataclass(frozen=True, slots=True)
class Origins:
    """The allowlist of CORS_ALLOWED_ORIGINS: `any` for `*`, else the listed origins."""

    any: bool
    listed: frozenset[Origin]

    @classmethod
    def parse(cls, text: str) -> Origins:
        """Comma-separated origins (`scheme://host[:port]`, a trailing `/` tolerated) or `*`;
        ValueError naming an entry that is not an origin (a path, a query, no scheme)."""
        entries = [entry.strip() for entry in text.split(",") if entry.strip()]
        listed = set()
        for entry in entries:
            if entry == "*":
                continue
            parts = urlsplit(entry)
            origin = parse_origin(entry)
            if origin is None or parts.path not in ("", "/") or parts.query or parts.fragment:
                raise ValueError(
                    f"{entry!r} is not an origin: write scheme://host[:port], e.g. "
                    "https://app.example.org (no path), or * for any"
                )
            listed.add(origin)
        return cls(any="*" in entries, listed=frozenset(listed))

    def __bool__(self) -> bool:
        return self.any or bool(self.listed)

    def allows(self, request: _Request, origin: str) -> bool:
        """`origin` (a request's Origin header) is listed, `*` is set, or it is the
        request's own origin as this server sees it. "null" (a sandboxed page, a file) and
        garbage never are."""
        theirs = parse_origin(origin)
        if theirs is None:
            return False
        if self.any or theirs in self.listed:
            return True
        return theirs == parse_origin(f"{request.scheme}://{request.host}")
