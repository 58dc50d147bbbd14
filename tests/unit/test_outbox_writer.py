"""The outbox writer (workers/messaging/outbox.py): an entry goes to its kind's queue and
carries the current trace context, so the worker's span continues the request's trace."""

from __future__ import annotations

import uuid

import orjson
from opentelemetry import context, trace

from workers.broker.topology import Topology
from workers.messaging.outbox import entry

TOPOLOGY = Topology("test")


def test_an_entry_is_routed_by_its_kind() -> None:
    message_id = uuid.uuid4()
    new = entry(TOPOLOGY, "example", {"task_id": "t"}, message_id)
    assert (new.message_id, new.exchange, new.routing_key) == (message_id, "test.jobs", "tasks")
    assert orjson.loads(new.body) == {"type": "example", "task_id": "t"}
    assert new.headers == {}  # no span, no trace context


def test_an_entry_carries_the_trace_context() -> None:
    span = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=0x0AF7651916CD43DD8448EB211C80319C,
            span_id=0xB7AD6B7169203331,
            is_remote=False,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
    )
    token = context.attach(trace.set_span_in_context(span))
    try:
        new = entry(TOPOLOGY, "user_notification", {"payload": {}}, uuid.uuid4())
    finally:
        context.detach(token)
    assert new.routing_key == "notifications.user"
    assert new.headers["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
