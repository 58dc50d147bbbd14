"""GET /messaging/health (broker, queues, outbox, worker heartbeats) and one trace from the
HTTP request through the relay and the worker to the realtime publication."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from server.app import create_app
from tests.integration.test_api_keys import as_key, create_key
from tests.integration.test_messaging_support import accepted, marker, rows
from tests.support.accounts import Account
from tests.support.tracing import named, spans_in_memory
from tests.support.waiting import eventually
from workers.broker.kinds import CONCERNS
from workers.process import worker_running

pytestmark = pytest.mark.usefixtures("clean_tables")


async def health(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/messaging/health", headers=headers)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_all_is_ok_while_a_worker_runs(client: Any, admin: Account, worker: Any) -> None:
    body = await health(client, admin.headers)
    assert body["status"] == "ok"
    assert body["broker"]["connected"] is True
    for concern in CONCERNS:
        queue = body["queues"][concern]
        assert set(queue) == {"ready", "consumers", "dead_letters"}
        assert queue["consumers"] >= 1
        assert queue["ready"] >= 0 and queue["dead_letters"] >= 0
    assert isinstance(body["queues"]["in_flight_total"], int)
    assert body["outbox"]["backlog"] >= 0
    [mine] = [w for w in body["workers"] if w["worker_id"] == worker.worker_id]
    assert mine["pid"] == os.getpid()
    assert mine["processed"] >= 0  # a snapshot taken every 5 s, from the worker's start
    assert set(mine["batches"]["acks"]) == {"batches", "items", "mean_batch"}
    assert 0 <= body["last_heartbeat_age_seconds"] < 10


async def test_who_may_ask(client: Any, alice: Account, admin: Account) -> None:
    assert (await client.get("/messaging/health")).status == 401
    assert (await client.get("/messaging/health", headers=alice.headers)).status == 403
    plain = (await create_key(client, alice, scopes=["messaging"]))["key"]
    assert (await client.get("/messaging/health", headers=as_key(plain))).status == 403
    with_scope = (await create_key(client, admin, scopes=["messaging"]))["key"]
    without = (await create_key(client, admin, scopes=["read"]))["key"]
    await health(client, as_key(with_scope))
    assert (await client.get("/messaging/health", headers=as_key(without))).status == 403


async def test_degraded_without_a_worker_and_messages_wait_in_the_queue(
    client: Any, admin: Account
) -> None:
    body = await health(client, admin.headers)
    assert body["status"].startswith("degraded: ")
    assert "no consumer on " + ", ".join(CONCERNS) in body["status"]
    assert all(body["queues"][c]["consumers"] == 0 for c in CONCERNS)
    before = body["queues"]["events.system"]["ready"]
    await accepted(client, "system_event", {"event_name": marker()}, account=admin)

    async def queued() -> bool:
        report = await health(client, admin.headers)
        return bool(report["queues"]["events.system"]["ready"] > before)

    await eventually(queued, timeout=10)


async def test_an_outbox_row_waiting_long_is_reported(
    client: Any, admin: Account, worker: Any, db: Any
) -> None:
    message_id = str(uuid.uuid4())
    await rows(
        db,
        "INSERT INTO outbox (message_id, exchange, routing_key, body, created_at, available_at) "
        "VALUES (%(id)s, 'nowhere', 'tasks', '\\x7b7d', now() - interval '5 minutes', "
        "now() + interval '1 hour') RETURNING id",
        id=message_id,
    )
    try:
        body = await health(client, admin.headers)
        assert body["outbox"]["backlog"] >= 1
        assert body["outbox"]["oldest_age_seconds"] >= 300
        assert body["status"] == "degraded: outbox has messages waiting for 300 s"
    finally:
        await rows(db, "DELETE FROM outbox WHERE message_id = %(id)s RETURNING id", id=message_id)


async def test_a_stopped_worker_is_no_longer_listed(
    client: Any, admin: Account, settings: Any
) -> None:
    async with worker_running(settings) as running:
        await running.amqp.wait_connected(timeout=10)

        async def listed() -> bool:
            workers = (await health(client, admin.headers))["workers"]
            return running.worker_id in {w["worker_id"] for w in workers}

        await eventually(listed, timeout=10)
    assert not await listed()


@pytest.fixture
def spans(settings: Any) -> Iterator[InMemorySpanExporter]:
    with spans_in_memory(settings) as exporter:
        yield exporter


@pytest.fixture
def app(settings: Any, spans: InMemorySpanExporter) -> Any:
    return create_app(settings)


async def test_one_trace_from_the_request_to_the_live_push(
    client: Any, admin: Account, alice: Account, worker: Any, spans: InMemorySpanExporter
) -> None:
    channel = f"user:{alice.id}"
    body = {"user_id": alice.id, "message": marker()}
    message_id = await accepted(client, "user_notification", body, account=admin)

    async def pushed() -> list[ReadableSpan]:
        return [
            span
            for span in named(spans.get_finished_spans(), "realtime publish")
            if span.attributes and span.attributes.get("messaging.destination.name") == channel
        ]

    [push] = await eventually(pushed, timeout=15)
    finished = spans.get_finished_spans()
    [http] = [
        s
        for s in finished
        if s.kind == trace.SpanKind.SERVER and "/messaging/user-notification" in s.name
    ]
    [publish] = [
        s
        for s in named(finished, "notifications.user publish")
        if s.attributes and s.attributes["messaging.message.id"] == str(message_id)
    ]
    [consume] = [
        s
        for s in named(finished, "notifications.user process")
        if s.attributes and s.attributes["messaging.message.id"] == str(message_id)
    ]
    trace_id = http.context.trace_id
    assert {s.context.trace_id for s in (publish, consume, push)} == {trace_id}
    assert publish.kind == trace.SpanKind.PRODUCER
    assert consume.kind == trace.SpanKind.CONSUMER
    assert publish.parent is not None and consume.parent is not None and push.parent is not None
    assert consume.parent.span_id == publish.context.span_id
    assert push.parent.span_id == consume.context.span_id
    assert consume.attributes is not None and consume.attributes["messaging.attempt"] == 1
    queries = [s for s in finished if s.name == "db.query" and s.context.trace_id == trace_id]
    statements = [str(s.attributes.get("db.statement")) for s in queries if s.attributes]
    assert any("INSERT INTO notifications" in statement for statement in statements)
