"""One trace spans the HTTP request, the outbox relay's publish and the worker's processing,
carried by W3C trace context in the AMQP headers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from server.app import create_app
from tests.support.tracing import named, spans_in_memory
from tests.support.waiting import eventually

pytestmark = pytest.mark.usefixtures("clean_tables")


@pytest.fixture
def spans(settings: Any) -> Iterator[InMemorySpanExporter]:
    with spans_in_memory(settings) as exporter:
        yield exporter


@pytest.fixture
def app(settings: Any, spans: InMemorySpanExporter) -> Any:
    return create_app(settings)


async def test_http_request_relay_and_worker_share_one_trace(
    user_client: Any, worker: Any, spans: InMemorySpanExporter
) -> None:
    response = await user_client.post("/tasks/example", json={"seconds": 0})
    task_id = (await response.json())["id"]

    async def processed() -> list[ReadableSpan]:
        return named(spans.get_finished_spans(), "tasks process")

    [consume] = await eventually(processed, timeout=15)
    finished = spans.get_finished_spans()
    [http] = [s for s in finished if s.kind == trace.SpanKind.SERVER and "/tasks/example" in s.name]
    [publish] = named(finished, "tasks publish")

    trace_id = http.context.trace_id
    assert publish.context.trace_id == trace_id
    assert consume.context.trace_id == trace_id
    assert publish.parent is not None and consume.parent is not None
    assert consume.parent.span_id == publish.context.span_id
    queries = [s for s in finished if s.name == "db.query" and s.context.trace_id == trace_id]
    assert any("INSERT INTO tasks" in str(s.attributes.get("db.statement")) for s in queries)
    assert any("UPDATE tasks" in str(s.attributes.get("db.statement")) for s in queries)
    assert consume.attributes["messaging.message.id"] == task_id


async def test_secrets_in_query_strings_never_reach_span_attributes(
    user_client: Any, spans: InMemorySpanExporter
) -> None:
    await user_client.get("/health/live?ticket=abc123secret&token=t0ken&x=1")
    [server_span] = [
        s
        for s in spans.get_finished_spans()
        if s.kind == trace.SpanKind.SERVER and "/health/live" in s.name
    ]
    values = " ".join(str(v) for v in server_span.attributes.values())
    assert "abc123secret" not in values
    assert "t0ken" not in values
    assert "x=1" in values
