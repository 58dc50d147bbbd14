"""The one Settings object: every knob of the server and the worker, read from the
environment and an optional `.env` file. docs/CONFIGURATION.md and .env.example are
generated from this class (`python -m server settings-docs --write`) and a test keeps them true.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-secret-key-change-me-in-production"  # refused in production
MIN_SECRET_LENGTH = 32


class ConfigError(Exception):
    """Settings could not be loaded; the message names each bad variable."""


class Settings(BaseSettings):
    """Field names are the environment variable names (case-insensitive)."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    # -- application -------------------------------------------------------------------------
    APP_NAME: str = Field("realtime-server", description="Name shown by GET / and in traces.")
    ENVIRONMENT: Literal["development", "test", "production"] = Field(
        "development",
        description="development, test or production. Production refuses default secrets "
        "and logs JSON.",
    )
    DEBUG: bool = Field(False, description="Verbose logging and tracebacks in the log.")
    SECRET_KEY: SecretStr = Field(
        SecretStr(DEV_SECRET),
        description="Signs tokens. At least 32 characters in production; never the default.",
    )
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Root log level (DEBUG=true forces DEBUG)."
    )
    LOG_FORMAT: Literal["auto", "json", "console"] = Field(
        "auto", description="auto = json in production, console otherwise."
    )

    # -- HTTP server -------------------------------------------------------------------------
    HOST: str = Field("127.0.0.1", description="Address the server binds (0.0.0.0 in containers).")
    PORT: int = Field(8000, ge=1, le=65535, description="Port the server listens on.")
    SHUTDOWN_TIMEOUT: float = Field(
        5.0, gt=0, description="Seconds in-flight requests get to finish on shutdown."
    )
    MAX_REQUEST_BODY: int = Field(
        1024 * 1024, ge=1024, description="Largest accepted request body in bytes (413 above)."
    )
    DOCS_ENABLED: bool = Field(True, description="Serve /openapi.json, /docs and /redoc.")
    METRICS_ENABLED: bool = Field(True, description="Serve Prometheus metrics at /metrics.")

    TRUST_FORWARDED_FOR: bool = Field(
        False,
        description="Take the client address from X-Forwarded-For (only behind a proxy you run).",
    )

    # -- accounts and tokens -----------------------------------------------------------------
    ACCESS_TOKEN_TTL: int = Field(900, ge=30, le=86400, description="Access token lifetime (s).")
    REFRESH_TOKEN_TTL: int = Field(
        30 * 86400, ge=300, description="Refresh token (session) lifetime in seconds."
    )
    JWT_SIGNING_KEYS: SecretStr = Field(
        SecretStr(""),
        description="kid:secret,kid:secret (first signs, all verify; each secret >= 32 bytes). "
        "Empty: one key derived from SECRET_KEY.",
    )
    JWT_ISSUER: str = Field("realtime-server", description="iss claim of issued tokens.")
    JWT_AUDIENCE: str = Field("realtime-server", description="aud claim of issued tokens.")
    TICKET_TTL: int = Field(
        30, ge=5, le=300, description="Lifetime (s) of single-use WebSocket/SSE tickets."
    )
    LOGIN_THROTTLE_WINDOW: int = Field(
        900, ge=10, description="Seconds over which failed logins are counted."
    )
    LOGIN_MAX_FAILURES_PER_ACCOUNT: int = Field(
        5, ge=1, description="Failed logins per account within the window before 429."
    )
    LOGIN_MAX_FAILURES_PER_ADDRESS: int = Field(
        20, ge=1, description="Failed logins per client address within the window before 429."
    )
    ARGON2_MEMORY_COST: int = Field(
        19456, ge=19456, description="argon2id memory in KiB (OWASP minimum 19456)."
    )
    ARGON2_TIME_COST: int = Field(2, ge=2, description="argon2id iterations (OWASP minimum 2).")
    ARGON2_PARALLELISM: int = Field(1, ge=1, le=16, description="argon2id lanes.")
    SUPERUSER_PASSWORD: SecretStr | None = Field(
        None, description="Password for `python -m server create-superuser` when not given."
    )

    # -- PostgreSQL --------------------------------------------------------------------------
    POSTGRES_SERVER: str = Field("localhost", description="PostgreSQL host.")
    POSTGRES_PORT: int = Field(5432, ge=1, le=65535, description="PostgreSQL port.")
    POSTGRES_USER: str = Field("postgres", description="PostgreSQL user.")
    POSTGRES_PASSWORD: SecretStr = Field(SecretStr(""), description="PostgreSQL password.")
    POSTGRES_DB: str = Field(
        "realtime", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$", description="Database name."
    )
    DB_POOL_SIZE: int = Field(
        10, ge=1, description="Connections the pool keeps once opened (opened on demand)."
    )
    DB_MAX_OVERFLOW: int = Field(
        10, ge=0, description="Extra connections allowed beyond DB_POOL_SIZE under load."
    )
    DB_CONNECT_TIMEOUT: float = Field(5.0, gt=0, description="Seconds to wait for a connection.")
    DB_STATEMENT_TIMEOUT: float = Field(30.0, gt=0, description="Seconds before a query fails.")

    # -- Redis -------------------------------------------------------------------------------
    REDIS_URL: SecretStr = Field(
        SecretStr("redis://localhost:6379/0"), description="Redis URL (may carry a password)."
    )
    REDIS_PREFIX: str = Field(
        "rt",
        pattern=r"^[A-Za-z0-9_.-]{1,32}$",
        description="Prefix of every Redis key, so several deployments can share one Redis.",
    )

    # -- RabbitMQ ----------------------------------------------------------------------------
    RABBITMQ_URL: SecretStr = Field(
        SecretStr("amqp://guest:guest@localhost:5672/"),
        description="AMQP URL (carries the password; never logged).",
    )
    AMQP_PREFIX: str = Field(
        "rt",
        pattern=r"^[A-Za-z0-9_.-]{1,32}$",
        description="Prefix of every exchange and queue name.",
    )
    OUTBOX_BATCH_SIZE: int = Field(
        200, ge=1, le=5000, description="Outbox rows the relay publishes per round."
    )
    OUTBOX_POLL_INTERVAL: float = Field(
        2.0, gt=0, description="Seconds between outbox scans when no NOTIFY arrives."
    )

    # -- worker ------------------------------------------------------------------------------
    WORKER_PREFETCH: int = Field(
        128,
        ge=1,
        le=1000,
        description=(
            "Messages the worker processes at once (AMQP prefetch); below ~64 the broker "
            "waits for acks under load (docs/BENCHMARKS.md)."
        ),
    )
    WORKER_SHUTDOWN_TIMEOUT: float = Field(
        10.0, gt=0, description="Seconds in-flight jobs get to finish when the worker stops."
    )
    WORKER_MAX_ATTEMPTS: int = Field(
        5, ge=1, le=50, description="Tries per message before it goes to the dead-letter queue."
    )
    RETRY_DELAYS: str = Field(
        "1,5,30,120",
        pattern=r"^\d+(\.\d+)?(,\d+(\.\d+)?)*$",
        description="Seconds to wait before the 1st, 2nd, ... retry (the last repeats).",
    )
    TASK_MAX_SECONDS: float = Field(
        300.0, gt=0, description="Longest `seconds` POST /tasks/example accepts."
    )

    # -- realtime (WebSocket, SSE, channels) --------------------------------------------------
    WS_ALLOWED_ORIGINS: str = Field(
        "",
        description="Comma-separated Origins allowed to open WebSockets/SSE (e.g. "
        "https://app.example.org); empty: same origin only; * allows any.",
    )
    WS_MAX_MESSAGE_SIZE: int = Field(
        1024 * 1024 + 64, ge=1024, description="Largest incoming WebSocket message (bytes)."
    )
    WS_HEARTBEAT: float = Field(
        30.0, gt=0, description="Seconds between WebSocket pings; no pong closes the socket."
    )
    WS_COMPRESSION: bool = Field(
        False, description="permessage-deflate (about 10x the memory per connection)."
    )
    SEND_QUEUE_MESSAGES: int = Field(
        2000, ge=10, description="Messages queued for a client before it is a slow consumer."
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
    HISTORY_SIZE: int = Field(200, ge=0, description="Publications kept per channel.")
    HISTORY_TTL: int = Field(
        600, ge=1, description="Seconds a publication stays recoverable (and idle history lives)."
    )
    PRESENCE_TTL: int = Field(
        60, ge=5, description="Presence lease (s): members of a dead node vanish after it."
    )
    CHANNEL_NAMESPACES: str = Field(
        "",
        description='Extra channel namespaces as JSON, e.g. {"chat": {"subscribe": "user", '
        '"publish": "user", "presence": true, "join_leave": true}}.',
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
        '"username": "u", "credential": "p"}]. Default none (no internet needed).',
    )
    ICE_HOST_ADDRESSES: str = Field(
        "",
        description="Comma-separated local addresses the server peer gathers; empty: the "
        "machine's own plus 127.0.0.1.",
    )
    WEBRTC_MAX_PEERS: int = Field(200, ge=1, description="Server peers per process.")
    WEBRTC_MAX_MEDIA_PEERS: int = Field(
        8, ge=0, description="Server peers with media (echo, recording, relay) per process."
    )
    WEBRTC_RELAY_MAX_MEMBERS: int = Field(
        4, ge=0, description="Largest room whose members' media the server relays (re-encodes)."
    )
    SIGNALING_RATE: float = Field(
        50.0, gt=0, description="Signaling messages per second per connection."
    )

    # -- components --------------------------------------------------------------------------
    WEBSOCKET_ENABLED: bool = Field(True, description="Serve the WebSocket endpoints.")
    SSE_ENABLED: bool = Field(True, description="Serve the Server-Sent Events endpoints.")
    WEBRTC_ENABLED: bool = Field(True, description="Serve WebRTC signaling and server peers.")
    TELEGRAM_BOTS_ENABLED: bool = Field(False, description="Run the Telegram notification bots.")
    TELEGRAM_BOT_TOKENS: SecretStr = Field(
        SecretStr(""),
        description="Comma-separated bot tokens from @BotFather (the first sends notifications).",
    )
    TELEGRAM_API_SERVER: str = Field(
        "https://api.telegram.org",
        description="Bot API server (a local telegram-bot-api, or a fake one in tests).",
    )
    TELEGRAM_LINK_CODE_TTL: int = Field(
        600, ge=30, le=86400, description="Seconds a one-time Telegram link code stays valid."
    )

    # -- tracing -----------------------------------------------------------------------------
    TRACING_ENABLED: bool = Field(
        True,
        description="Trace requests, queries, publishes and jobs (only while an OTLP endpoint "
        "is set: without one, tracing costs nothing).",
    )
    OTEL_EXPORTER_OTLP_ENDPOINT: str | None = Field(
        None, description="OTLP/HTTP collector URL, e.g. http://collector:4318."
    )
    TRACING_SAMPLE_RATIO: float = Field(
        1.0, ge=0, le=1, description="Share of new traces recorded (parent decisions are kept)."
    )
    OTEL_SERVICE_NAME: str = Field("realtime-server", description="service.name of the spans.")

    @field_validator("OTEL_EXPORTER_OTLP_ENDPOINT", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

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

    @field_validator("JWT_SIGNING_KEYS")
    @classmethod
    def _signing_keys_parse(cls, value: SecretStr) -> SecretStr:
        from server.kernel.security.tokens import parse_signing_keys

        for key in parse_signing_keys(value.get_secret_value(), "unused"):
            if len(key.secret.encode()) < MIN_SECRET_LENGTH:
                raise ValueError(f"the secret of key {key.kid!r} is shorter than 32 bytes")
        return value

    @model_validator(mode="after")
    def _production_secrets(self) -> Settings:
        if self.ENVIRONMENT == "production":
            secret = self.SECRET_KEY.get_secret_value()
            if secret == DEV_SECRET or len(secret) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"SECRET_KEY must be set to a random value of at least {MIN_SECRET_LENGTH} "
                    "characters when ENVIRONMENT=production"
                )
        return self

    # -- derived values ----------------------------------------------------------------------
    @property
    def is_production(self) -> bool:
        return self.ENVIRONMENT == "production"

    @property
    def tracing_active(self) -> bool:
        return self.TRACING_ENABLED and bool(self.OTEL_EXPORTER_OTLP_ENDPOINT)

    @property
    def retry_delays_ms(self) -> tuple[int, ...]:
        return tuple(int(float(part) * 1000) for part in self.RETRY_DELAYS.split(","))

    @property
    def db_max_connections(self) -> int:
        return self.DB_POOL_SIZE + self.DB_MAX_OVERFLOW

    def components(self) -> dict[str, bool]:
        """What GET / reports as enabled."""
        return {
            "websocket": self.WEBSOCKET_ENABLED,
            "sse": self.SSE_ENABLED,
            "webrtc": self.WEBRTC_ENABLED,
            "telegram": self.TELEGRAM_BOTS_ENABLED,
            "tracing": self.tracing_active,
            "metrics": self.METRICS_ENABLED,
            "docs": self.DOCS_ENABLED,
        }


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


def describe_errors(error: ValidationError) -> str:
    """One line per bad variable, naming it, for a human at a terminal."""
    lines = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "settings"
        message = str(item["msg"]).removeprefix("Value error, ")
        value = item.get("input")
        secret = "SecretStr" in str(
            getattr(Settings.model_fields.get(name.upper()), "annotation", "")
        )
        shown = "" if secret or isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"  {name.upper()}: {message}{shown}")
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and .env; raise ConfigError naming the culprits."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(describe_errors(error)) from None


settings_key: web.AppKey[Settings] = web.AppKey("settings", Settings)
