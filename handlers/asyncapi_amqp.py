"""The RabbitMQ half of the AsyncAPI document, from the kind table (workers/broker/kinds.py)
and the topology (workers/broker/topology.py): per concern, the routing key the outbox relay
publishes with on `{prefix}.jobs`, the queue the worker consumes, and its dead-letter queue;
each message's payload is `{"type": kind, ...}` around the kind's payload model
(workers/broker/payloads.py), as the worker decodes it (workers/jobs/registry.py)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from handlers.asyncapi_schemas import Components
from workers.broker.kinds import CONCERNS, KINDS, Kind
from workers.broker.topology import Topology

VERSION = {"bindingVersion": "0.3.0"}


def _queue(name: str) -> dict[str, Any]:
    return {"name": name, "durable": True, "exclusive": False, "autoDelete": False}


class ExampleTask(BaseModel):
    """The example task's message: the task is stored (`GET /tasks/{task_id}`) with its
    parameters; the message only names it."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["example"]
    task_id: uuid.UUID


class JobHeaders(BaseModel):
    """AMQP headers: the W3C trace context of the request that sent the message, and the
    worker's retry bookkeeping (a dead-lettered message also carries x-error, x-attempts
    and x-dead-at). The message id (AMQP `message_id`) is the outbox entry's id: the worker
    drops a message whose id it has already processed."""

    model_config = ConfigDict(extra="allow")
    traceparent: str | None = None
    tracestate: str | None = None
    x_attempt: int | None = Field(None, alias="x-attempt", ge=1)
    x_last_error: str | None = Field(None, alias="x-last-error", max_length=1000)
    retry_delay: str | None = Field(None, alias="retry-delay", description="Milliseconds.")


def envelope(kind: Kind) -> type[BaseModel]:
    """The message body of a kind: `{"type": kind, "payload": <payload model>}`."""
    if kind.model is None:
        return ExampleTask
    model: type[BaseModel] = create_model(
        f"{kind.model.__name__}Message",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"{kind.summary}: a `{kind.name}` message.",
        type=(Literal[kind.name], ...),
        payload=(kind.model, ...),
    )
    return model


def _message(components: Components, kind: Kind, headers: dict[str, Any]) -> dict[str, str]:
    return components.message(
        f"amqp.{kind.name}",
        kind.name,
        envelope(kind),
        mode="validation",
        fields={
            "contentType": "application/json",
            "headers": headers,
            "bindings": {"amqp": {"contentEncoding": "utf-8", **VERSION}},
        },
    )


def channels(
    components: Components, topology: Topology, server_ref: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    result: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    headers = components.schema(JobHeaders, "validation")
    publish = {"deliveryMode": 2, "mandatory": True, "bindingVersion": "0.3.0"}
    for concern in CONCERNS:
        kinds = [kind for kind in KINDS.values() if kind.concern == concern]
        messages = {f"amqp.{kind.name}": _message(components, kind, headers) for kind in kinds}
        names = ", ".join(f"`{kind.name}`" for kind in kinds)
        routed, queue, dead = f"jobs.{concern}", f"queue.{concern}", f"dead.{concern}"
        result[routed] = {
            "address": concern,
            "title": f"{topology.exchange} / {concern}",
            "description": f"The routing key of {names} on the direct exchange "
            f"`{topology.exchange}` (bound to the queue `{topology.queue(concern)}`).",
            "servers": [server_ref],
            "messages": messages,
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {"name": topology.exchange, "type": "direct", "durable": True},
                    "bindingVersion": "0.3.0",
                }
            },
        }
        for address, key, text in (
            (topology.queue(concern), queue, f"The work queue of {names}."),
            (
                topology.dead_queue(concern),
                dead,
                f"Where {names} end when the worker gives up (or the broker rejects them): "
                "`python -m workers.dlq` lists and requeues them.",
            ),
        ):
            result[key] = {
                "address": address,
                "title": address,
                "description": text,
                "servers": [server_ref],
                "messages": messages,
                "bindings": {"amqp": {"is": "queue", "queue": _queue(address), **VERSION}},
            }
        refs = [{"$ref": f"#/channels/{routed}/messages/{key}"} for key in messages]
        operations[f"publish.{concern}"] = {
            "action": "send",
            "title": f"The outbox relay publishes {names}",
            "description": "Persistent and mandatory, with publisher confirms, from the "
            "transactional outbox of the server that accepted the request.",
            "channel": {"$ref": f"#/channels/{routed}"},
            "messages": refs,
            "bindings": {"amqp": publish},
        }
        operations[f"consume.{concern}"] = {
            "action": "receive",
            "title": f"The worker runs {names}",
            "description": "Acked after the job's commit; failures are retried with "
            f"backoff through `{topology.retry_exchange}`, then dead-lettered.",
            "channel": {"$ref": f"#/channels/{queue}"},
            "messages": [{"$ref": f"#/channels/{queue}/messages/{key}"} for key in messages],
            "bindings": {"amqp": {"ack": True, "bindingVersion": "0.3.0"}},
        }
    return result, operations
