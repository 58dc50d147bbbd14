"""The realtime settings: WebSocket, SSE and channels, uploaded files, WebRTC; with the
parsers that check the JSON-valued ones at startup."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator, model_validator


class RealtimeSettings(BaseModel):
    # -- realtime (WebSocket, SSE, channels) --------------------------------------------------
    # Which pages may open WebSockets and event streams: CORS_ALLOWED_ORIGINS (settings_app).
    WS_MAX_MESSAGE_SIZE: int = Field(
        1024 * 1024 + 64, ge=1024, description="Largest incoming WebSocket message (bytes)."
    )
    MAX_CONNECTIONS: int = Field(
        0,
        ge=0,
        description="WebSocket and SSE connections per process; past it a new one gets 503"
        " `server_full` before the upgrade. 0: as many as the open-files limit allows, less"
        " 1,024 kept for pools and files (the server raises its soft RLIMIT_NOFILE to the"
        " hard one at startup). A larger value than the limit allows stops startup with a"
        " message (docs/OPERATIONS.md, Many connections).",
    )
    WS_HEARTBEAT: float = Field(
        30.0,
        gt=0,
        description="Seconds a WebSocket may stay silent before the server pings it; one that"
        " sends nothing (no pong, no message) for half as long again is dropped (1006).",
    )
    WS_COMPRESSION: bool = Field(
        False, description="permessage-deflate (about 10x the memory per connection)."
    )
    SEND_QUEUE_MESSAGES: int = Field(
        2000, ge=10, description="Messages queued for a client before it is a slow consumer."
    )
    SEND_QUEUE_BYTES: int = Field(
        1024 * 1024,
        ge=65536,
        description="Unsent bytes (queued, or in the socket's buffer) a client may have for a "
        "second (twice that at once) before it is a slow consumer (4008): one that stops "
        "reading small frames is closed long before SEND_QUEUE_MESSAGES of them pile up.",
    )
    SEND_BUFFER_BYTES: int = Field(
        4 * 1024 * 1024,
        ge=65536,
        description="Unsent bytes a client may have before its messages wait in the queue.",
    )
    PUBLISH_RATE: float = Field(50.0, gt=0, description="Publishes per second per connection.")
    PUBLISH_BURST: int = Field(100, ge=1, description="Publishes allowed in a burst.")
    FRAME_RATE: float = Field(
        1000.0, gt=0, description="Frames per second per connection before it is closed."
    )
    MAX_SUBSCRIPTIONS: int = Field(100, ge=1, description="Channels per connection.")
    HISTORY_SIZE: int = Field(
        200,
        ge=0,
        description="Publications kept per channel; a namespace's `history_size` overrides it "
        "(`user:` channels keep 2000, so a burst of notifications stays recoverable).",
    )
    HISTORY_TTL: int = Field(
        600, ge=1, description="Seconds a publication stays recoverable (and idle history lives)."
    )
    PRESENCE_TTL: int = Field(
        60, ge=5, description="Presence lease (s): members of a dead node vanish after it."
    )
    CHANNEL_NAMESPACES: str = Field(
        "",
        description='Extra channel namespaces as JSON, e.g. {"chat": {"subscribe": "user", '
        '"publish": "user", "presence": true, "join_leave": true, "history_size": 500}}; '
        "`token: true` makes its channels accept subscription tokens (SUBSCRIPTION_TOKEN_KEY); "
        "naming a built-in one (public, user, admin, system, private) changes only the "
        'options given, e.g. {"user": {"history_size": 5000}}.',
    )
    SUBSCRIPTION_TOKEN_KEY: SecretStr = Field(
        SecretStr(""),
        description="HS256 key of subscription tokens (JWTs with `sub`, `channel`, `exp` and "
        "an optional `publish`) that your application issues to let a user subscribe to one "
        "channel of a namespace with `token: true`; empty: tokens are refused. 32+ random "
        "characters in production.",
    )
    PRIVATE_CHANNELS_PER_USER: int = Field(
        100,
        ge=0,
        description="Private channels one user may own at once (POST "
        "/realtime/private-channels beyond it: 409 `too_many_channels`); 0: only admins "
        "create them.",
    )
    SSE_PING_INTERVAL: float = Field(15.0, gt=0, description="Seconds between SSE keep-alives.")
    UPLOAD_DIR: str = Field("var/uploads", description="Where uploaded files are written.")
    UPLOAD_MAX_SIZE: int = Field(
        2 * 1024**3, ge=1, description="Largest file a client may upload (bytes)."
    )
    UPLOAD_QUOTA: int = Field(
        10 * 1024**3, ge=1, description="Total bytes of files one user may store."
    )
    UPLOAD_CHUNK_SIZE: int = Field(
        256 * 1024, ge=1024, le=1024 * 1024, description="Bytes per binary chunk frame."
    )
    UPLOAD_WINDOW: int = Field(
        8 * 1024 * 1024, ge=1024, description="Bytes a client may send ahead of acknowledgement."
    )
    UPLOAD_MAX_ACTIVE: int = Field(
        10, ge=1, description="Unfinished uploads one user may have at a time."
    )
    UPLOAD_STALE_AFTER: int = Field(
        86400, ge=60, description="Seconds after which an unfinished upload is discarded."
    )
    BINARY_MESSAGE_MAX: int = Field(
        64 * 1024, ge=1, description="Largest small binary message (larger: upload a file)."
    )

    # -- WebRTC -------------------------------------------------------------------------------
    ICE_SERVERS: str = Field(
        "[]",
        description='STUN/TURN servers as JSON, e.g. [{"urls": "turn:turn.example.org:3478", '
        '"username": "u", "credential": "p"}]. Default none (no internet needed). Used by the '
        "server peer and given as they are to every signed-in client (GET "
        "/realtime/webrtc/ice-servers): a static TURN password here is public to your users; "
        "prefer TURN_SECRET's short-lived credentials.",
    )
    STUN_URLS: str = Field(
        "",
        description="Comma-separated STUN URLs handed to clients and the server peer "
        "(GET /realtime/webrtc/ice-servers), e.g. stun:turn.example.org:3478.",
    )
    TURN_URLS: str = Field(
        "",
        description="Comma-separated TURN URLs of a coturn with `use-auth-secret`, e.g. "
        "turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349?transport=tcp; "
        "each client and the server peer get credentials valid for TURN_TTL seconds.",
    )
    TURN_SECRET: SecretStr = Field(
        SecretStr(""),
        description="coturn's `static-auth-secret`: TURN credentials are derived from it "
        "(TURN REST API); it is never sent to clients. Required with TURN_URLS; 32+ random "
        "characters in production.",
    )
    TURN_TTL: int = Field(
        86400,
        ge=60,
        le=7 * 86400,
        description="Seconds a derived TURN credential stays valid; coturn refuses it after "
        "that (keep it above the longest call: refreshes of a relay may need it too).",
    )
    ICE_HOST_ADDRESSES: str = Field(
        "",
        description="Comma-separated local addresses the server peer gathers; empty: the "
        "machine's own plus 127.0.0.1.",
    )
    WEBRTC_MAX_PEERS: int = Field(200, ge=1, description="Server peers per process.")
    WEBRTC_MAX_MEDIA_PEERS: int = Field(
        4,
        ge=0,
        description="Server peers with media (echo, recording, relay) per process; the next "
        "one (a data-only peer adding media too) is refused with 503 / `too_many_media_peers`"
        ". A 640x480 VP8 echo costs ~21% of a core (bench webrtc-media-capacity): 4 fit in 80%"
        " of one core; a relayed track costs about one echo more. Size it to ~80% of the "
        "cores the process gets.",
    )
    WEBRTC_RELAY_MAX_MEMBERS: int = Field(
        4, ge=0, description="Largest room whose members' media the server relays (re-encodes)."
    )
    SIGNALING_RATE: float = Field(
        50.0, gt=0, description="Signaling messages per second per connection."
    )

    @field_validator("CHANNEL_NAMESPACES")
    @classmethod
    def _namespaces_parse(cls, value: str) -> str:
        from server.kernel.namespaces import parse_namespaces

        parse_namespaces(value)
        return value

    @field_validator("ICE_SERVERS")
    @classmethod
    def _ice_servers_parse(cls, value: str) -> str:
        ice_servers(value)
        return value

    @field_validator("STUN_URLS", "TURN_URLS")
    @classmethod
    def _ice_urls_parse(cls, value: str, info: ValidationInfo) -> str:
        schemes = ("stun:", "stuns:") if info.field_name == "STUN_URLS" else ("turn:", "turns:")
        for url in url_list(value):
            if not url.startswith(schemes) or len(url) <= len(url.split(":")[0]) + 1:
                raise ValueError(f"{url!r} is not a {' or '.join(schemes)} URL")
        return value

    @model_validator(mode="after")
    def _turn_needs_secret(self) -> RealtimeSettings:
        secret = self.TURN_SECRET.get_secret_value()
        if self.TURN_URLS.strip() and not secret:
            raise ValueError("TURN_URLS needs TURN_SECRET (coturn's static-auth-secret)")
        production = getattr(self, "ENVIRONMENT", None) == "production"  # in AppSettings
        if production and self.TURN_URLS.strip() and (len(secret) < 32 or "dev-only" in secret):
            raise ValueError(
                "TURN_SECRET must be 32+ random characters when ENVIRONMENT=production"
            )
        token_key = self.SUBSCRIPTION_TOKEN_KEY.get_secret_value()
        if production and token_key and (len(token_key) < 32 or "dev-only" in token_key):
            raise ValueError(
                "SUBSCRIPTION_TOKEN_KEY must be 32+ random characters when ENVIRONMENT=production"
            )
        return self


def url_list(text: str) -> list[str]:
    """A comma-separated list of URLs (STUN_URLS, TURN_URLS)."""
    return [url.strip() for url in text.split(",") if url.strip()]


def ice_servers(text: str) -> list[dict[str, Any]]:
    """The ICE_SERVERS setting: a JSON list of {"urls", "username"?, "credential"?}."""
    try:
        raw = json.loads(text or "[]")
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(raw, list):
        raise ValueError("must be a JSON list of {urls, username?, credential?}")
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("urls"), (str, list)):
            raise ValueError("each ICE server needs `urls` (a string or a list of strings)")
        if set(entry) - {"urls", "username", "credential"}:
            raise ValueError("ICE server fields are urls, username, credential")
    return raw
