"""The application's own settings: identity and logging, the HTTP server, accounts and
tokens; with the checks that keep secrets strong (production refuses the default one)."""

from __future__ import annotations

import os
from functools import cached_property
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator

from server.kernel.addresses import Network, parse_networks
from server.kernel.origins import Origins

DEV_SECRET = "dev-only-secret-key-change-me-in-production"  # refused in production
MIN_SECRET_LENGTH = 32


class AppSettings(BaseModel):
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
    WEB_CONCURRENCY: int | Literal["auto"] = Field(
        1,
        description="Server processes `python -m server run` starts on PORT (`auto`: one per "
        "core). Above 1 they share the port with SO_REUSEPORT; each is a full node.",
    )
    WORKER_PROCESSES: int = Field(
        1, ge=0, le=64, description="Workers `python -m server run` starts (0: none here)."
    )
    MAX_REQUEST_BODY: int = Field(
        1024 * 1024, ge=1024, description="Largest accepted request body in bytes (413 above)."
    )
    DOCS_ENABLED: bool = Field(
        True, description="Serve /openapi.json, /asyncapi.json, /docs and /redoc."
    )
    METRICS_ENABLED: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    METRICS_TOKEN: SecretStr = Field(
        SecretStr(""),
        description="When set, GET /metrics needs `Authorization: Bearer <token>` (401 "
        "otherwise). Empty: /metrics is open; set it wherever others can reach the port.",
    )
    WORKER_METRICS_PORT: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of the worker's own listener: GET /metrics (behind METRICS_TOKEN "
        "like the server's) and GET /health (200 while consuming, else 503). 0: no listener. "
        "`server run` gives its n-th worker this port + n - 1.",
    )
    WORKER_METRICS_HOST: str = Field(
        "127.0.0.1",
        description="Address the worker's metrics and health listener binds (0.0.0.0 in "
        "containers).",
    )

    TRUSTED_PROXIES: str = Field(
        "",
        description="Proxies you run (comma-separated addresses or networks, e.g. "
        "`127.0.0.1,10.0.0.0/8`): from them alone X-Forwarded-For names the client's address "
        "(login throttling, logs). Empty: the connection's own address, always.",
    )

    CORS_ALLOWED_ORIGINS: str = Field(
        "",
        # WS_ALLOWED_ORIGINS was this list for WebSockets alone: still read, deprecated.
        validation_alias=AliasChoices("CORS_ALLOWED_ORIGINS", "WS_ALLOWED_ORIGINS"),
        description="Comma-separated origins of pages on other sites that may call the API, "
        "open event streams, upload files and open WebSockets (e.g. "
        "`https://app.example.org`; scheme, host and port must match); `*`: any origin. "
        "Empty: this server's own origin only. No cookies are used, so no credentials mode. "
        "WS_ALLOWED_ORIGINS is a deprecated name for it.",
    )
    CORS_MAX_AGE: int = Field(
        600,
        ge=0,
        le=86400,
        description="Seconds a browser may cache a CORS preflight answer (Chromium caps it at "
        "7200).",
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
    LOGIN_FREE_FAILURES_PER_PAIR: int = Field(
        3,
        ge=1,
        description="Failed logins of one account from one address before each further "
        "failure makes that pair wait (429 with Retry-After).",
    )
    LOGIN_PAIR_FIRST_DELAY: int = Field(
        2, ge=1, description="Seconds of the pair's first wait; each further failure doubles it."
    )
    LOGIN_PAIR_MAX_DELAY: int = Field(
        900, ge=1, description="Longest wait (s) one account and address pair is made to wait."
    )
    LOGIN_MAX_FAILURES_PER_ADDRESS: int = Field(
        20, ge=1, description="Failed logins per client address within the window before 429."
    )
    LOGIN_ACCOUNT_FAILURES_KNOWN_ONLY: int = Field(
        100,
        ge=1,
        description="Failed logins of one account, from all addresses within the window, "
        "after which only addresses it signed in from recently may still try (429 for others).",
    )
    LOGIN_KNOWN_ADDRESS_TTL: int = Field(
        30 * 86400,
        ge=60,
        description="Seconds an address stays known to an account after a successful login.",
    )
    REGISTER_THROTTLE_WINDOW: int = Field(
        3600, ge=10, description="Seconds over which registrations per address are counted."
    )
    REGISTER_MAX_PER_ADDRESS: int = Field(
        20, ge=1, description="Registrations per client address within the window before 429."
    )
    ARGON2_MEMORY_COST: int = Field(
        19456, ge=19456, description="argon2id memory in KiB (OWASP minimum 19456)."
    )
    ARGON2_TIME_COST: int = Field(2, ge=2, description="argon2id iterations (OWASP minimum 2).")
    ARGON2_PARALLELISM: int = Field(1, ge=1, le=16, description="argon2id lanes.")
    SUPERUSER_PASSWORD: SecretStr | None = Field(
        None, description="Password for `python -m server create-superuser` when not given."
    )

    @field_validator("TRUSTED_PROXIES")
    @classmethod
    def _proxies_parse(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("CORS_ALLOWED_ORIGINS")
    @classmethod
    def _origins_parse(cls, value: str) -> str:
        Origins.parse(value)
        return value

    @cached_property
    def trusted_proxies(self) -> tuple[Network, ...]:
        """TRUSTED_PROXIES parsed, once."""
        return parse_networks(self.TRUSTED_PROXIES)

    @field_validator("WEB_CONCURRENCY")
    @classmethod
    def _concurrency_range(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 256:
            raise ValueError("must be `auto` or a number of processes from 1 to 256")
        return value

    def server_processes(self) -> int:
        """WEB_CONCURRENCY as a number (`auto`: one per core)."""
        if self.WEB_CONCURRENCY == "auto":
            return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        return int(self.WEB_CONCURRENCY)

    @field_validator("JWT_SIGNING_KEYS")
    @classmethod
    def _signing_keys_parse(cls, value: SecretStr) -> SecretStr:
        from server.kernel.security.tokens import parse_signing_keys

        for key in parse_signing_keys(value.get_secret_value(), "unused"):
            if len(key.secret.encode()) < MIN_SECRET_LENGTH:
                raise ValueError(f"the secret of key {key.kid!r} is shorter than 32 bytes")
        return value

    @model_validator(mode="after")
    def _production_secrets(self) -> AppSettings:
        if self.ENVIRONMENT == "production":
            secret = self.SECRET_KEY.get_secret_value()
            if secret == DEV_SECRET or len(secret) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"SECRET_KEY must be set to a random value of at least {MIN_SECRET_LENGTH} "
                    "characters when ENVIRONMENT=production"
                )
        return self

    @property
    def is_production(self) -> bool:
        return self.ENVIRONMENT == "production"
