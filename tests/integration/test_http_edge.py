"""What every response carries at the edge: no Server header naming the stack,
`X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`; and a request whose
headers aiohttp's parser refuses (a 100 KB token) gets the JSON envelope, echoing nothing."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from tests.integration.test_http_errors import assert_envelope
from tests.support.accounts import Account

HUGE_TOKEN = "Bearer " + "A" * 100_000


async def raw_request(
    client: Any, head: bytes, *, head_only: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """Send `head` as is on a fresh connection; read the whole answer (the server closes),
    or only its head (for answers that keep the connection open)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(head)
        await writer.drain()
        read = reader.readuntil(b"\r\n\r\n") if head_only else reader.read()
        raw = await asyncio.wait_for(read, timeout=10)
    finally:
        writer.close()
    head_part, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head_part.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def assert_edge_headers(headers: Any) -> None:
    """Headers of a response as aiohttp or raw_request gives them (case-insensitive)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    assert "server" not in lowered, lowered.get("server")
    assert lowered["x-content-type-options"] == "nosniff"
    assert lowered["referrer-policy"] == "no-referrer"


UPGRADE = (
    b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
)


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        (b"/users/me", b""),
        (b"/realtime/ws", UPGRADE),
        (b"/realtime/events", b"Accept: text/event-stream\r\n"),
    ],
    ids=["rest", "websocket", "sse"],
)
async def test_oversized_header_gets_the_envelope_and_no_echo(
    client: Any, caplog: pytest.LogCaptureFixture, path: bytes, extra: bytes
) -> None:
    head = (
        b"GET "
        + path
        + b" HTTP/1.1\r\nHost: test\r\n"
        + extra
        + b"Authorization: "
        + HUGE_TOKEN.encode()
        + b"\r\n\r\n"
    )
    with caplog.at_level(logging.DEBUG):
        status, headers, body = await raw_request(client, head)
    assert status == 431
    assert headers["content-type"].startswith("application/json")
    error = assert_envelope(json.loads(body), "header_too_large")
    assert "16384" in error["message"]
    assert headers["x-request-id"] == error["request_id"]
    assert_edge_headers(headers)
    assert b"AAAA" not in body and b"Bearer" not in body
    assert "AAAA" not in caplog.text  # the log does not keep the token's start either
    assert "refused a request from 127.0.0.1: header_too_large" in caplog.text
    assert (await client.get("/health/live")).status == 200


async def test_overlong_url_gets_414_envelope_and_no_echo(client: Any) -> None:
    path = b"/users/" + b"B" * 10_000
    status, headers, body = await raw_request(
        client, b"GET " + path + b" HTTP/1.1\r\nHost: test\r\n\r\n"
    )
    assert status == 414
    assert_envelope(json.loads(body), "uri_too_long")
    assert b"BBBB" not in body
    assert_edge_headers(headers)


async def test_header_within_the_limit_still_reaches_the_app(client: Any) -> None:
    response = await client.get("/users/me", headers={"Authorization": "Bearer " + "A" * 8000})
    assert response.status == 401
    assert_envelope(await response.json(), "invalid_token")


async def test_unparseable_request_gets_the_envelope_without_echo(client: Any) -> None:
    status, headers, body = await raw_request(
        client, b"GET /health HTTP/1.1\r\nHost: test\r\nBad\x01Header: secret-value\r\n\r\n"
    )
    assert status == 400
    assert_envelope(json.loads(body), "bad_request")
    assert b"secret-value" not in body and b"Bad" not in body.replace(b"bad_request", b"")
    assert_edge_headers(headers)


async def test_json_and_error_responses_carry_the_edge_headers(client: Any, alice: Account) -> None:
    for response in (
        await client.get("/health/live"),
        await client.get("/users/me", headers=alice.headers),
        await client.get("/users/me"),  # 401 envelope
        await client.get("/no/such/route"),  # 404 envelope
        await client.delete("/health/live"),  # 405 envelope
    ):
        assert_edge_headers(response.headers)


@pytest.mark.parametrize(
    "path",
    [
        "/realtime/test",
        "/realtime/sse-test",
        "/docs",
        "/openapi.json",
        "/metrics",
        "/static/docs/swagger-ui.css",
        "/static/docs/no-such-file.css",
    ],
)
async def test_pages_static_files_and_metrics_carry_the_edge_headers(
    client: Any, path: str
) -> None:
    response = await client.get(path)
    assert response.status in {200, 404}
    assert_edge_headers(response.headers)


async def test_websocket_and_sse_answers_carry_the_edge_headers(
    client: Any, alice: Account
) -> None:
    head = (
        b"GET /realtime/ws HTTP/1.1\r\nHost: test\r\n"
        + UPGRADE
        + f"Authorization: Bearer {alice.access_token}\r\n\r\n".encode()
    )
    status, headers, _ = await raw_request(client, head, head_only=True)
    assert status == 101
    assert_edge_headers(headers)
    async with client.get(
        "/realtime/events?channels=public:edge",
        headers={**alice.headers, "Accept": "text/event-stream"},
    ) as stream:
        assert stream.status == 200
        assert_edge_headers(stream.headers)
