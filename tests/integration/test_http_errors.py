"""Every error is the JSON envelope with the right status, never a 500, and the connection
and process stay healthy afterwards."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiohttp import web

pytestmark = pytest.mark.usefixtures("clean_tables")


def assert_envelope(body: dict[str, Any], code: str) -> dict[str, Any]:
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["request_id"], str) and error["request_id"]
    return error


async def test_unknown_route_is_404_envelope(client: Any) -> None:
    response = await client.get("/no/such/thing")
    assert response.status == 404
    assert_envelope(await response.json(), "not_found")


async def test_wrong_method_is_405_with_allow(client: Any) -> None:
    response = await client.delete("/health/live")
    assert response.status == 405
    error = assert_envelope(await response.json(), "method_not_allowed")
    assert "GET" in error["message"]
    assert "GET" in response.headers["Allow"]


async def test_wrong_content_type_is_415(user_client: Any) -> None:
    response = await user_client.post(
        "/tasks/example", data=b"seconds=1", headers={"Content-Type": "text/plain"}
    )
    assert response.status == 415
    assert (
        "text/plain" in assert_envelope(await response.json(), "unsupported_media_type")["message"]
    )


@pytest.mark.parametrize("raw", [b"{bad", b"", b"\xff\xfe", b"[1,2", b'{"seconds": NaN}'])
async def test_malformed_json_is_400(user_client: Any, raw: bytes) -> None:
    response = await user_client.post(
        "/tasks/example", data=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert_envelope(await response.json(), "malformed_json")


async def test_body_over_the_limit_is_413(user_client: Any, settings: Any) -> None:
    big = b'{"payload": "' + b"x" * (settings.MAX_REQUEST_BODY + 10) + b'"}'
    response = await user_client.post(
        "/tasks/example", data=io.BytesIO(big), headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    assert_envelope(await response.json(), "payload_too_large")
    assert (await user_client.get("/health/live")).status == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"seconds": "soon"}, "seconds"),
        ({"seconds": -1}, "seconds"),
        ({"seconds": 1e9}, "seconds"),
        ([1, 2, 3], None),
        ("just a string", None),
    ],
)
async def test_schema_violations_are_422_with_details(
    user_client: Any, body: Any, field: str | None
) -> None:
    response = await user_client.post("/tasks/example", json=body)
    assert response.status == 422
    error = assert_envelope(await response.json(), "validation_error")
    assert error["details"]
    if field:
        assert field in error["details"][0]["loc"]


async def test_bad_path_parameter_is_422(user_client: Any) -> None:
    response = await user_client.get("/tasks/not-a-uuid")
    assert response.status == 422
    assert assert_envelope(await response.json(), "validation_error")["details"][0]["loc"] == [
        "task_id"
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        ("patch", "/users/me", {"full_name": "a\u0000b"}, ["full_name"]),
        (
            "post",
            "/tasks/example",
            {"seconds": 1, "x": ["ok", {"k\u0000": 1}]},
            ["x", "1", "k\\u0000"],
        ),
        ("get", "/users/me/notifications?unread=%00", None, ["unread"]),
        ("post", "/users/me/notifications/1%00/read", None, ["notification_id"]),
    ],
)
async def test_text_holding_nul_is_422_and_stores_nothing(
    user_client: Any, method: str, path: str, body: Any, loc: list[str]
) -> None:
    """PostgreSQL cannot store NUL in text: said up front, never a 500."""
    before = await (await user_client.get("/users/me")).json()
    response = await getattr(user_client, method)(path, json=body)
    assert response.status == 422, await response.text()
    error = assert_envelope(await response.json(), "validation_error")
    assert error["details"][0]["loc"] == loc
    assert "NUL" in error["details"][0]["message"]
    assert await (await user_client.get("/users/me")).json() == before


async def test_a_backslash_u0000_text_is_not_a_nul(user_client: Any) -> None:
    response = await user_client.patch("/users/me", json={"full_name": "\\u0000 is fine"})
    assert response.status == 200, await response.text()
    assert (await response.json())["full_name"] == "\\u0000 is fine"


async def test_request_id_is_honoured_and_echoed(client: Any) -> None:
    response = await client.get("/nope", headers={"X-Request-ID": "trace-me-123"})
    assert response.headers["X-Request-ID"] == "trace-me-123"
    assert (await response.json())["error"]["request_id"] == "trace-me-123"


@pytest.mark.parametrize("hostile", ["x" * 500, "bad id with spaces", "<script>", "a\u00e9"])
async def test_hostile_request_ids_are_replaced(client: Any, hostile: str) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": hostile})
    echoed = response.headers["X-Request-ID"]
    assert echoed != hostile
    assert len(echoed) == 32


async def test_unexpected_exception_is_500_without_internals(
    aiohttp_client: Any, app: web.Application, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail")

    app.router.add_get("/test/boom", boom)
    client = await aiohttp_client(app)
    response = await client.get("/test/boom")
    assert response.status == 500
    error = assert_envelope(await response.json(), "internal_error")
    assert "secret internal detail" not in error["message"]
    assert any(
        "secret internal detail" in (record.exc_text or str(record.exc_info))
        for record in caplog.records
    )
    assert (await client.get("/health/live")).status == 200
