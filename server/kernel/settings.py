"""The one Settings object: every knob of the server and the worker, read from the
environment and an optional `.env` file. docs/CONFIGURATION.md and .env.example are
generated from this class (`python -m server settings-docs --write`) and a test keeps them true.

The knobs are grouped by concern, one class each, combined here:

    settings_app.py       application, HTTP server, accounts and tokens (and secret checks)
    settings_backends.py  PostgreSQL, Redis, RabbitMQ, worker
    settings_realtime.py  WebSocket, SSE and channels, files, WebRTC
    settings.py           components and tracing; loading, and errors naming the variable
"""

from __future__ import annotations

from aiohttp import web
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.kernel.settings_app import DEV_SECRET, AppSettings
from server.kernel.settings_backends import BackendSettings
from server.kernel.settings_names import warn_misspelled_settings
from server.kernel.settings_realtime import RealtimeSettings, ice_servers

__all__ = ["DEV_SECRET", "ConfigError", "Settings", "ice_servers", "load_settings", "settings_key"]


class ConfigError(Exception):
    """Settings could not be loaded; the message names each bad variable."""


# pydantic orders fields base-first along the MRO (the last base listed comes first), and
# the generated docs follow that order: the groups are listed here last-to-first.
class Settings(RealtimeSettings, BackendSettings, AppSettings, BaseSettings):
    """Field names are the environment variable names (case-insensitive)."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    # -- components --------------------------------------------------------------------------
    WEBSOCKET_ENABLED: bool = Field(True, description="Serve the WebSocket endpoints.")
    SSE_ENABLED: bool = Field(True, description="Serve the Server-Sent Events endpoints.")
    WEBRTC_ENABLED: bool = Field(True, description="Serve WebRTC signaling and server peers.")
    TELEGRAM_BOTS_ENABLED: bool = Field(False, description="Run the Telegram notification bots.")
    TELEGRAM_POLLING: bool = Field(
        True,
        description="This worker polls Telegram for bot commands. Telegram allows one poller "
        "per bot: `python -m server run --workers M` turns it off in all but the first.",
    )
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

    @property
    def tracing_active(self) -> bool:
        return self.TRACING_ENABLED and bool(self.OTEL_EXPORTER_OTLP_ENDPOINT)

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
    """Read settings from the environment and .env; raise ConfigError naming the culprits.
    Names that look like a misspelled setting get one warning each (the name, never the value)."""
    warn_misspelled_settings(
        Settings.model_fields, overrides.get("_env_file", Settings.model_config.get("env_file"))
    )
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(describe_errors(error)) from None


settings_key: web.AppKey[Settings] = web.AppKey("settings", Settings)
