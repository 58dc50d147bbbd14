"""GET /asyncapi.json: a valid AsyncAPI 3.0.0 document (checked against the official JSON
Schema, vendored in tests/data) that follows the surfaces enabled, and one the outbox relay
keeps: every message it publishes to RabbitMQ validates against the payload and headers
schemas the document gives its queue, and every message a queue promises is seen.
(Live WebSocket and event-stream frames: test_asyncapi_live.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiormq
import jsonschema
import orjson
import pytest
from aiohttp import web

from handlers.asyncapi import build_asyncapi
from server.app import create_app
from server.hub.protocol import message_types_key
from server.kernel.settings import Settings, settings_key
from tests.conftest import make_settings
from tests.integration.test_messaging_support import PATHS, valid_body
from tests.support.accounts import Account
from tests.support.asyncapi import SCHEMA, Document, fetch
from tests.support.rtc_media import rtc_app
from tests.support.waiting import eventually
from workers.broker.kinds import CONCERNS
from workers.broker.topology import Topology


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> web.Application:
    return rtc_app(settings, tmp_path / "uploads")  # the app the live sessions use


async def test_the_document_is_valid_asyncapi_3(client: Any, app: web.Application) -> None:
    doc = await fetch(client)
    schema = json.loads(SCHEMA.read_text())
    problems = [
        f"{list(e.absolute_path)}: {e.message[:200]}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(doc)
    ]
    assert problems == []
    document = Document(doc)
    refs = [m for m in _refs(doc) if m.startswith("#/")]
    assert refs and all(document.resolve(ref) is not None for ref in refs)  # KeyError if not
    for operation in doc["operations"].values():  # the spec: messages of its own channel
        for part in (operation, operation.get("reply")):
            if part is not None:
                own = part["channel"]["$ref"] + "/messages/"
                assert all(m["$ref"].startswith(own) for m in part["messages"]), operation
    # What the session accepts is what the document lists, and every queue is in it.
    accepted = set(app[message_types_key].models)
    assert {"subscribe", "publish", "file.begin", "join", "candidate"} <= accepted
    listed = {m["name"] for k, m in document.messages("websocket").items() if k[:7] == "client."}
    assert listed == accepted | {"binary.chunk", "binary.message"}
    topology = Topology.from_settings(app[settings_key])
    queues = {c["address"] for c in doc["channels"].values()}
    assert {topology.queue(c) for c in CONCERNS} <= queues
    assert (await fetch(client)) == doc  # built once, served the same


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


async def test_messages_published_to_rabbitmq_match_the_document(
    client: Any, admin: Account, alice: Account, settings: Settings
) -> None:
    """What the outbox relay publishes for each kind (no worker runs: the messages wait in
    the session's queues, and are taken from there)."""
    document = Document(await fetch(client))
    sent = set()
    for kind, path in PATHS.items():
        response = await client.post(path, json=valid_body(kind, alice.id), headers=admin.headers)
        assert response.status == 202, await response.text()
        sent.add((await response.json())["message_id"])
    response = await client.post("/tasks/example", json={"seconds": 0}, headers=alice.headers)
    assert response.status == 202, await response.text()
    sent.add((await response.json())["id"])
    topology = Topology.from_settings(settings)
    connection = await aiormq.connect(settings.RABBITMQ_URL.get_secret_value())
    try:
        channel = await connection.channel()
        received: dict[str, tuple[str, Any, Any]] = {}

        async def take() -> bool:
            for concern in CONCERNS:
                message = await channel.basic_get(topology.queue(concern), no_ack=True)
                if message.delivery_tag is not None and message.body:
                    headers = dict(message.header.properties.headers or {})
                    body = orjson.loads(message.body)
                    received[str(message.header.properties.message_id)] = (concern, body, headers)
            return sent <= set(received)

        await eventually(take, timeout=15)
    finally:
        await connection.close()
    for concern, body, headers in received.values():
        document.check(f"queue.{concern}", body["type"], body)
        [ref] = {m["headers"]["$ref"] for m in document.messages(f"queue.{concern}").values()}
        text = {k: v.decode() if isinstance(v, bytes) else v for k, v in headers.items()}
        assert document.errors(ref, text) == []
    promised = {f"{key}@queue.{c}" for c in CONCERNS for key in document.messages(f"queue.{c}")}
    assert promised - document.seen == set()


@pytest.mark.parametrize(
    "surfaces",
    [
        {"WEBRTC_ENABLED": False},
        {"SSE_ENABLED": False},
        {"WEBSOCKET_ENABLED": False},
        {"WEBSOCKET_ENABLED": False, "SSE_ENABLED": False},
    ],
)
def test_the_document_follows_the_surfaces_enabled(
    settings: Settings, surfaces: dict[str, bool]
) -> None:
    custom = make_settings(POSTGRES_DB=settings.POSTGRES_DB, AMQP_PREFIX="elsewhere", **surfaces)
    doc = build_asyncapi(create_app(custom), title="t")
    assert list(jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).iter_errors(doc)) == []
    assert ("websocket" in doc["channels"]) is custom.WEBSOCKET_ENABLED
    assert ("events" in doc["channels"]) is custom.SSE_ENABLED
    assert ("client.join" in doc["components"]["messages"]) is (
        custom.WEBSOCKET_ENABLED and custom.WEBRTC_ENABLED
    )
    assert doc["channels"]["queue.orders"]["address"] == "elsewhere.orders"
