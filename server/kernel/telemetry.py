"""Logs and traces: structured log lines carrying the request id, the request-id middleware,
an access log that redacts secrets in query strings, and the OpenTelemetry tracer provider.

The tracer provider is the one process-wide object here: OpenTelemetry's API keeps a single
global provider, so configure_tracing() installs ours once and later calls reuse it.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from server.kernel import spans
from server.kernel.addresses import client_address, client_address_key
from server.kernel.settings import Settings, settings_key

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

SECRET_QUERY_PARAMS = frozenset(
    {"ticket", "token", "access_token", "refresh_token", "api_key", "apikey", "key", "password"}
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def redact_query(query: str) -> str:
    """`a=1&ticket=abc` -> `a=1&ticket=REDACTED`; unparsable queries are dropped whole."""
    if not query:
        return query
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return "REDACTED"
    return urlencode([(k, "REDACTED" if k.lower() in SECRET_QUERY_PARAMS else v) for k, v in pairs])


def redact_path_qs(path: str, query: str) -> str:
    return f"{path}?{redact_query(query)}" if query else path


# -- logging ---------------------------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Puts the current request id and trace id on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):  # the access log passes its own
            record.request_id = request_id_var.get() or "-"
        context = trace.get_current_span().get_span_context()
        record.trace_id = format(context.trace_id, "032x") if context.is_valid else None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if getattr(record, "trace_id", None):
            entry["trace_id"] = record.trace_id  # type: ignore[attr-defined]
        for name in ("method", "path", "status", "duration_ms", "remote", "size"):
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(settings: Settings) -> None:
    """Idempotent: replaces the root handler. JSON in production (or LOG_FORMAT=json)."""
    use_json = settings.LOG_FORMAT == "json" or (
        settings.LOG_FORMAT == "auto" and settings.is_production
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if use_json:
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter(
            "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"
        )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel("DEBUG" if settings.DEBUG else settings.LOG_LEVEL)
    for noisy in ("aiormq", "asyncio", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class AccessLogger(AbstractAccessLogger):
    """One line per request: method, redacted path, status, size, duration, request id."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = redact_path_qs(request.path, request.query_string)
        self.logger.info(
            "%s %s %s %s %.1fms",
            request.method,
            path,
            response.status,
            response.body_length,
            time * 1000,
            extra={
                "method": request.method,
                "path": path,
                "status": response.status,
                "size": response.body_length,
                "duration_ms": round(time * 1000, 2),
                "remote": request.get(client_address_key, request.remote),
                "request_id": request.get(request_id_key, "-"),
            },
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Honour a sane X-Request-ID or make one; echo it; bind it to the log context. Also
    note the client's address (server/kernel/addresses.py) for handlers and the log."""
    given = request.headers.get("X-Request-ID", "")
    request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    request[request_id_key] = request_id
    settings = request.config_dict.get(settings_key)
    proxies = settings.trusted_proxies if settings is not None else ()
    request[client_address_key] = client_address(request, proxies)
    token = request_id_var.set(request_id)
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers["X-Request-ID"] = request_id
            raise
        if not response.prepared:
            response.headers["X-Request-ID"] = request_id
        return response
    finally:
        request_id_var.reset(token)


# -- tracing ---------------------------------------------------------------------------------

_URL_ATTRIBUTES = ("http.target", "http.url", "url.query", "url.full")


class RedactingSpanProcessor(SpanProcessor):
    """Rewrites URL attributes of new spans so that tickets and tokens never leave the process
    (the aiohttp instrumentation redacts only a few cloud-signature parameters)."""

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        attributes = span.attributes or {}
        for name in _URL_ATTRIBUTES:
            value = attributes.get(name)
            if isinstance(value, str) and value:
                span.set_attribute(name, _redact_url_value(name, value))


def _redact_url_value(name: str, value: str) -> str:
    if name == "url.query":
        return redact_query(value)
    base, _, query = value.partition("?")
    return f"{base}?{redact_query(query)}" if query else value


def configure_tracing(settings: Settings, *, instrument_aiohttp: bool = True) -> TracerProvider:
    """The process's tracer provider (created once), exporting over OTLP/HTTP when an
    endpoint is configured. The server also instruments aiohttp's Application class.

    Called only when tracing is active (an endpoint is set), or by tests that attach an
    in-memory exporter: recording spans costs real CPU (more than half of a trivial
    request's), so without an exporter the no-op API is left in place."""
    if spans.installed():
        return cast(TracerProvider, trace.get_tracer_provider())
    provider = TracerProvider(
        sampler=ParentBased(TraceIdRatioBased(settings.TRACING_SAMPLE_RATIO)),
        resource=Resource.create(
            {
                "service.name": settings.OTEL_SERVICE_NAME,
                "deployment.environment": settings.ENVIRONMENT,
            }
        ),
    )
    provider.add_span_processor(RedactingSpanProcessor())
    if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT.rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    spans.install(provider)
    if instrument_aiohttp:
        from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor

        # The instrumentor subclasses web.Application to prepend its middleware, which
        # aiohttp >= 3.9 flags with a DeprecationWarning at class creation; harmless here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Inheritance class", DeprecationWarning)
            AioHttpServerInstrumentor().instrument(tracer_provider=provider)
    return provider


request_id_key: web.RequestKey[str] = web.RequestKey("request_id", str)
