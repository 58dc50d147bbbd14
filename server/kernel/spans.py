"""Spans that cost nothing while tracing is off.

Without an exporter the server and the worker leave OpenTelemetry's no-op API in place
(server.kernel.telemetry.configure_tracing), but even a no-op `start_as_current_span` builds two
context managers and attaches a context per call: about 8 % of the worker's CPU per
message. `span()` skips all of it until a tracer provider is installed, and `installed()`
lets a hot path skip its own propagation work the same way. Importable from storage and
workers: it depends only on OpenTelemetry.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

_NO_SPAN: AbstractContextManager[trace.Span] = nullcontext(trace.INVALID_SPAN)
_installed = False


def install(provider: TracerProvider) -> None:
    """Make `provider` the process's tracer provider (OpenTelemetry allows one, for good)."""
    global _installed
    trace.set_tracer_provider(provider)
    _installed = True


def installed() -> bool:
    """Whether spans are recorded: install() ran (an exporter is set, or a test attached an
    in-memory one). A flag, because the API's own lookup reads the environment each call."""
    return _installed


def span(tracer: trace.Tracer, name: str, **kwargs: Any) -> AbstractContextManager[trace.Span]:
    """`tracer.start_as_current_span(name, **kwargs)`, or a shared no-op context (whose span
    ignores attributes) while spans are not recorded."""
    if not installed():
        return _NO_SPAN
    return tracer.start_as_current_span(name, **kwargs)
