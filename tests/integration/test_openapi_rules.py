"""The OpenAPI document states what the server enforces: for each rule the fuzzing found
missing, the document (checked with jsonschema, as a client generator would) and the server
agree on the same input."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiohttp import web
from jsonschema import Draft202012Validator

from server.app import create_app
from server.kernel.security.passwords import MIN_PASSWORD_LENGTH
from tests.conftest import make_settings
from tests.integration.test_realtime_channels import subscribe
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account
from workers.worker import Worker


async def document(client: Any) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status == 200
    spec: dict[str, Any] = await response.json()
    return spec


def accepts(spec: dict[str, Any], schema: dict[str, Any], value: Any) -> bool:
    """Whether `schema` (refs into the document's components) accepts `value`."""
    root = {**schema, "components": spec["components"]}
    return Draft202012Validator(root).is_valid(value)


def component(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def body_schema(spec: dict[str, Any], path: str, method: str = "post") -> dict[str, Any]:
    content = spec["paths"][path][method]["requestBody"]["content"]
    schema: dict[str, Any] = content["application/json"]["schema"]
    return schema


def path_parameter(spec: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    for parameter in spec["paths"][path]["get"]["parameters"]:
        if parameter["name"] == name:
            schema: dict[str, Any] = parameter["schema"]
            return schema
    raise AssertionError(f"{path} has no parameter {name}")


@pytest.mark.parametrize(
    ("path", "field", "body"),
    [
        ("/auth/register", "password", {"email": "a@example.org", "username": "ada"}),
        ("/users", "password", {"email": "a@example.org", "username": "ada"}),
        ("/users/me/password", "new_password", {"current_password": "x"}),
    ],
)
async def test_new_passwords_state_the_policys_minimum_length(
    client: Any, admin: Account, path: str, field: str, body: dict[str, Any]
) -> None:
    spec = await document(client)
    schema = body_schema(spec, path)
    short, enough = "q" * (MIN_PASSWORD_LENGTH - 1), "q" * MIN_PASSWORD_LENGTH
    confirm = ["password_confirm"] if path == "/auth/register" else []
    assert not accepts(spec, schema, {**body, **dict.fromkeys([field, *confirm], short)})
    assert accepts(spec, schema, {**body, **dict.fromkeys([field, *confirm], enough)})
    if path == "/users":
        response = await client.post(path, json={**body, field: short}, headers=admin.headers)
        assert response.status == 422


async def test_task_seconds_state_task_max_seconds(aiohttp_client: Any, alice: Account) -> None:
    app: web.Application = create_app(make_settings(TASK_MAX_SECONDS=5))
    client = await aiohttp_client(app)
    spec = await document(client)
    seconds = spec["components"]["schemas"]["ExampleTaskIn"]["properties"]["seconds"]
    assert seconds["maximum"] == 5
    response = await client.post("/tasks/example", json={"seconds": 5.5}, headers=alice.headers)
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["details"][0]["loc"] == ["seconds"]
    assert error["details"][0]["type"] == "less_than_equal"


async def test_channel_names_follow_the_namespaces(client: Any, alice: Account) -> None:
    spec = await document(client)
    presence = path_parameter(spec, "/realtime/channels/{name}/presence", "name")
    assert accepts(spec, presence, "public:lobby")
    for name in ("nope:x", "admin:x", "public:a b", "user:abc"):
        assert not accepts(spec, presence, name), name
        response = await client.get(f"/realtime/channels/{name}/presence", headers=alice.headers)
        assert response.status in (400, 403, 404), name  # refused, as the document says
    broadcast = body_schema(spec, "/realtime/broadcast")
    assert accepts(spec, broadcast, {"channel": "user:42", "data": 1})
    assert not accepts(spec, broadcast, {"channel": "user:abc", "data": 1})
    assert not accepts(spec, broadcast, {"channel": "", "data": 1})


async def test_no_text_may_hold_nul(client: Any, alice: Account) -> None:
    spec = await document(client)
    update = body_schema(spec, "/users/me", "patch")
    assert accepts(spec, update, {"full_name": "Ada"})
    assert not accepts(spec, update, {"full_name": "A\u0000da"})
    task = body_schema(spec, "/tasks/example")
    assert accepts(spec, task, {"payload": {"a": ["b", 1, None]}})
    assert not accepts(spec, task, {"payload": {"a": ["b\u0000"]}})
    assert not accepts(spec, task, {"payload": {"a\u0000": 1}})
    response = await client.post(
        "/tasks/example", json={"payload": {"a": ["b\u0000"]}}, headers=alice.headers
    )
    assert response.status == 422


@pytest.mark.parametrize("field", ["email", "username"])
async def test_a_patch_refuses_null_where_the_document_does(
    client: Any, alice: Account, field: str
) -> None:
    spec = await document(client)
    assert not accepts(spec, body_schema(spec, "/users/me", "patch"), {field: None})
    assert not accepts(spec, body_schema(spec, "/users/{user_id}", "patch"), {field: None})
    assert accepts(spec, body_schema(spec, "/users/me", "patch"), {"full_name": None})
    response = await client.patch("/users/me", json={field: None}, headers=alice.headers)
    assert response.status == 422


async def test_api_key_expiry_says_it_must_be_in_the_future(client: Any, alice: Account) -> None:
    spec = await document(client)
    expires = spec["components"]["schemas"]["ApiKeyCreate"]["properties"]["expires_at"]
    assert "future" in expires["description"]
    response = await client.post(
        "/auth/api-keys",
        json={"name": "k", "expires_at": "2000-01-01T00:00:00Z"},
        headers=alice.headers,
    )
    assert response.status == 422


async def test_send_takes_exactly_one_target(client: Any) -> None:
    spec = await document(client)
    send = body_schema(spec, "/realtime/send")
    assert accepts(spec, send, {"user_id": 1, "data": 1})
    assert accepts(spec, send, {"client_id": "0" * 32, "data": 1})
    assert accepts(spec, send, {"user_id": None, "client_id": "0" * 32, "data": 1})
    assert not accepts(spec, send, {"user_id": 1, "client_id": "0" * 32, "data": 1})
    assert not accepts(spec, send, {"data": 1})
    notify = body_schema(spec, "/realtime/notifications/send")
    assert not accepts(spec, notify, {"title": "t", "user_id": None, "channel": None})
    assert not accepts(spec, notify, {"title": "t", "user_id": 1, "channel": "public:x"})


async def test_room_member_ids_are_bounded(client: Any, alice: Account) -> None:
    spec = await document(client)
    rooms = body_schema(spec, "/realtime/webrtc/rooms")
    assert accepts(spec, rooms, {"name": "r", "allowed_user_ids": [1]})
    for ids in ([0], [2**63]):
        assert not accepts(spec, rooms, {"name": "r", "allowed_user_ids": ids})
        response = await client.post(
            "/realtime/webrtc/rooms",
            json={"name": "r", "allowed_user_ids": ids},
            headers=alice.headers,
        )
        assert response.status == 422


async def test_login_needs_an_identifier_and_lists_no_403(client: Any) -> None:
    spec = await document(client)
    login = spec["paths"]["/auth/login"]["post"]
    assert "403" not in login["responses"]
    schema = login["requestBody"]["content"]["application/json"]["schema"]
    assert not accepts(spec, schema, {"password": "x"})
    assert not accepts(spec, schema, {"email": "", "password": "x"})
    assert accepts(spec, schema, {"username": "ada", "password": "x"})


async def test_special_use_email_domains_are_stated(client: Any, alice: Account) -> None:
    spec = await document(client)
    update = body_schema(spec, "/users/me", "patch")
    assert not accepts(spec, update, {"email": "ada@ci.TEST"})
    assert accepts(spec, update, {"email": "ada@example.org"})
    response = await client.patch("/users/me", json={"email": "ada@ci.test"}, headers=alice.headers)
    assert response.status == 422


async def test_the_upload_documents_its_multipart_body(client: Any) -> None:
    spec = await document(client)
    body = spec["paths"]["/realtime/binary/upload"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["multipart/form-data"]["schema"]["required"] == ["file"]


async def test_options_on_tasks_example_offers_only_post(client: Any, alice: Account) -> None:
    for method in ("OPTIONS", "GET"):
        response = await client.request(method, "/tasks/example", headers=alice.headers)
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
    response = await client.get("/tasks/not-a-uuid", headers=alice.headers)
    assert response.status == 422  # other ids still reach the handler's validation


async def test_every_route_is_in_the_document(client: Any) -> None:
    spec = await document(client)
    paths = spec["paths"]
    assert "*/*" in paths["/realtime/files/{file_id}"]["get"]["responses"]["200"]["content"]
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    events = paths["/realtime/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert "/asyncapi.json" in events["description"]
    websocket = paths["/realtime/ws"]["get"]
    assert "101" in websocket["responses"] and "/asyncapi.json" in websocket["description"]


# -- found by test_openapi_contract.py -------------------------------------------------------


async def test_a_notification_with_a_huge_number_is_stored_pushed_and_listed(
    client: Any, admin: Account
) -> None:
    """JSONB gives 1e114 back as an exact integer, which orjson cannot write: it was a 500
    after the notification was stored (and never pushed)."""
    body = {"user_id": admin.id, "title": "big", "data": {"n": 1.6e114}}
    response = await client.post("/realtime/notifications/send", json=body, headers=admin.headers)
    assert response.status == 201, await response.text()
    assert (await response.json())["data"]["n"] == 16 * 10**113
    listed = await client.get("/users/me/notifications", headers=admin.headers)
    assert listed.status == 200
    assert 16 * 10**113 in [item["data"]["n"] for item in (await listed.json())["items"]]


async def test_an_admin_notification_with_a_huge_number_is_pushed(
    client: Any, admin: Account, worker: Worker
) -> None:
    """The same number through the worker: its push failed on the stored row (TypeError),
    so the job was retried until it went to the dead letters, never pushed. (Other tests'
    admin notifications may reach this admin's channel too: ours is found by its text.)"""
    ws = await connect(client, admin)
    await subscribe(ws, f"user:{admin.id}")
    text = f"big-{uuid.uuid4().hex}"
    body = {"message": text, "severity": "warning", "data": {"n": 1.6e114}}
    response = await client.post("/messaging/admin-notification", json=body, headers=admin.headers)
    assert response.status == 202, await response.text()
    async with asyncio.timeout(10):
        while True:
            publication = await next_of(ws, "publication")
            if publication["data"]["body"] == text:
                break
    assert publication["data"]["data"]["n"] == 16 * 10**113
    await ws.close()
