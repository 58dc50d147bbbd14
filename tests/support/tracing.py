"""Spans exported into memory, for the tests that follow one trace across processes.

OpenTelemetry keeps one tracer provider per process, with its processors, for good: once a
test installed ours, every later test of the session makes real spans. A test's exporter
is therefore attached through a gate that it closes when done, so later spans are dropped
quietly (a shut-down processor logs a warning for every span, which buried the logs of
failing tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from server.kernel.telemetry import configure_tracing


class _Gate(SimpleSpanProcessor):
    """Exports ended spans while open."""

    open = True

    def on_end(self, span: ReadableSpan) -> None:
        if self.open:
            super().on_end(span)


@contextmanager
def spans_in_memory(settings: Any) -> Iterator[InMemorySpanExporter]:
    """Tracing as with an OTLP endpoint, but exporting into memory until the block ends."""
    provider = configure_tracing(settings)
    exporter = InMemorySpanExporter()
    gate = _Gate(exporter)
    provider.add_span_processor(gate)
    try:
        yield exporter
    finally:
        gate.open = False
        exporter.clear()


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]
