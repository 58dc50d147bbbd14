"""The application's own settings: identity and logging, the HTTP server, accounts and
tokens; with the checks that keep secrets strong (production refuses the default one)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

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
    MAX_REQUEST_BODY: int = Field(
        1024 * 1024, ge=1024, description="Largest accepted request body in bytes (413 above)."
    )
    DOCS_ENABLED: bool = Field(True, description="Serve /openapi.json, /docs and /redoc.")
    METRICS_ENABLED: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    METRICS_TOKEN: SecretStr = Field(
        SecretStr(""),
        description="When set, GET /metrics needs `Authorization: Bearer <token>` (401 "
        "otherwise). Empty: /metrics is open; set it wherever others can reach the port.",
    )

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
