"""AsyncAPI test helpers: the served document (which of a channel's messages a frame is, and
whether it fits its schema), and WebSocket and event-stream clients that keep every frame
and event they receive, for the document to judge (tests/integration/test_asyncapi_*.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
from aiohttp import WSMsgType
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.support.accounts import Account

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "asyncapi-3.0.0.json"
BASE = "urn:asyncapi-document"
# Frames only an outage of Redis produces (tests/integration/test_service_outages.py).
OUTAGE_ONLY = {"server.gap@websocket", "server.gap@events", "server.error@events"}


async def fetch(client: Any) -> dict[str, Any]:
    response = await client.get("/asyncapi.json")
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    return dict(await response.json())


class Document:
    """The served document: which of a channel's messages a frame is, and whether it fits."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        resource = Resource.from_contents(doc, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(BASE, resource)
        self.seen: set[str] = set()

    def messages(self, channel: str) -> dict[str, dict[str, Any]]:
        refs = self.doc["channels"][channel]["messages"]
        return {key: self.resolve(ref["$ref"]) for key, ref in refs.items()}

    def resolve(self, ref: str) -> Any:
        node: Any = self.doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def errors(self, schema_ref: str, value: Any) -> list[str]:
        validator = jsonschema.Draft202012Validator(
            {"$ref": BASE + schema_ref}, registry=self.registry
        )
        return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]

    def check(self, channel: str, name: str, value: Any, prefix: str = "") -> None:
        """`value` must be the payload of one of the channel's messages called `name`."""
        candidates = [
            key
            for key, message in self.messages(channel).items()
            if message["name"] == name and key.startswith(prefix)
        ]
        assert candidates, f"{name!r} on {channel} is not in the document: {value}"
        problems = {}
        for key in candidates:
            ref = self.doc["channels"][channel]["messages"][key]["$ref"]
            problems[key] = self.errors(ref + "/payload", value)
            if not problems[key]:
                self.seen.add(f"{key}@{channel}")
                return
        raise AssertionError(f"{name} frame {value} does not fit the document: {problems}")


class Recorder:
    """A test WebSocket that keeps every frame it receives, for the document to judge."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.binaries: list[bytes] = []
        self.pending: list[dict[str, Any]] = []
        self.hello: dict[str, Any] = {}

    @classmethod
    async def open(cls, client: Any, account: Account) -> Recorder:
        recorder = cls(await client.ws_connect("/realtime/ws", headers=account.headers))
        recorder.hello = await recorder.next("connected")
        return recorder

    async def send(self, frame: dict[str, Any], reply: str | None = None) -> dict[str, Any]:
        await self.ws.send_json(frame)
        return await self.next(reply) if reply else {}

    async def next(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        for index, frame in enumerate(self.pending):
            if frame["type"] == kind:
                return self.pending.pop(index)
        async with asyncio.timeout(timeout):
            while True:
                message = await self.ws.receive()
                if message.type is WSMsgType.BINARY:
                    self.binaries.append(message.data)
                    continue
                assert message.type is WSMsgType.TEXT, message
                frame = json.loads(message.data)
                self.frames.append(frame)
                if frame["type"] == kind:
                    return dict(frame)
                assert frame["type"] != "error", frame
                self.pending.append(frame)


class EventStream:
    """A test event stream: its events as (name, id, data), every one kept."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.events: list[tuple[str, str | None, Any]] = []

    @classmethod
    async def open(cls, client: Any, account: Account, query: str) -> EventStream:
        response = await client.get(f"/realtime/events?{query}", headers=account.headers)
        assert response.status == 200, await response.text()
        return cls(response)

    async def next(self, name: str, timeout: float = 10) -> Any:
        fields: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.response.content.readline()).decode()
                assert line, "the stream ended"
                if line.startswith(":"):
                    continue
                if line.strip():
                    key, _, value = line.rstrip("\n").partition(": ")
                    fields[key] = value
                    continue
                if "event" not in fields:
                    continue
                event = (fields["event"], fields.get("id"), json.loads(fields["data"]))
                self.events.append(event)
                fields = {}
                if event[0] == name:
                    return event[2]
