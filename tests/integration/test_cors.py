"""CORS: a page of an allowed origin may call the REST API, open an event stream and upload
files (preflight answered on each), and read error envelopes; any other origin gets no CORS
headers, and its preflight a 403 envelope. The WebSocket Origin check uses the same list."""

from __future__ import annotations

import io
import json
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from server.app import create_app
from server.kernel.settings import Settings
from tests.conftest import make_settings
from tests.integration.test_http_edge import HUGE_TOKEN, raw_request
from tests.integration.test_http_errors import assert_envelope
from tests.integration.test_realtime_channels import unique
from tests.support.accounts import Account

APP = "https://app.example.org"
EVIL = "https://evil.example"
ACAO = "Access-Control-Allow-Origin"
HUGE = HUGE_TOKEN.encode()


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return base_settings.model_copy(
        update={"CORS_ALLOWED_ORIGINS": f"{APP}, http://localhost:3000"}
    )


def listed(value: str | None) -> set[str]:
    return {part.strip().lower() for part in (value or "").split(",") if part.strip()}


def assert_cors(response: aiohttp.ClientResponse, origin: str = APP) -> None:
    assert response.headers.get(ACAO) == origin, dict(response.headers)
    exposed = listed(response.headers.get("Access-Control-Expose-Headers"))
    assert {"location", "retry-after", "x-request-id", "www-authenticate"} <= exposed
    assert "origin" in listed(response.headers.get("Vary"))
    assert "Access-Control-Allow-Credentials" not in response.headers


def assert_no_cors(response: aiohttp.ClientResponse) -> None:
    assert not [h for h in response.headers if h.lower().startswith("access-control-")], dict(
        response.headers
    )


async def test_allowed_origin_reads_a_rest_answer(client: Any, alice: Account) -> None:
    response = await client.get("/users/me", headers={**alice.headers, "Origin": APP})
    assert response.status == 200
    assert_cors(response)
    second = await client.get(
        "/users/me", headers={**alice.headers, "Origin": "http://localhost:3000"}
    )
    assert_cors(second, "http://localhost:3000")


@pytest.mark.parametrize(
    "origin", [EVIL, "http://app.example.org", "https://app.example.org:8443", "null"]
)
async def test_other_origins_get_no_cors_headers(client: Any, alice: Account, origin: str) -> None:
    """The server answers (a browser would keep the answer from the page)."""
    response = await client.get("/users/me", headers={**alice.headers, "Origin": origin})
    assert response.status == 200
    assert_no_cors(response)
    assert "origin" in listed(response.headers.get("Vary"))  # caches keep answers apart


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        ("/users/me", "PATCH", "authorization, content-type, x-request-id"),
        ("/realtime/events", "GET", "authorization, last-event-id"),
        ("/realtime/binary/upload", "POST", "authorization, content-type"),
        ("/messaging/user-notification", "POST", "x-api-key, content-type, idempotency-key"),
        ("/tasks/example", "POST", "authorization, content-type, traceparent"),
    ],
)
async def test_preflight_is_answered_on_each_route_family(
    client: Any, path: str, method: str, headers: str
) -> None:
    response = await client.options(
        path,
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )
    assert response.status == 204, await response.text()
    assert response.headers[ACAO] == APP
    assert method.lower() in listed(response.headers["Access-Control-Allow-Methods"])
    assert set(headers.split(", ")) <= listed(response.headers["Access-Control-Allow-Headers"])
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Credentials" not in response.headers


async def test_preflight_lists_the_methods_of_the_url(client: Any) -> None:
    preflight = {"Origin": APP, "Access-Control-Request-Method": "DELETE"}
    response = await client.options("/users/me", headers=preflight)
    assert listed(response.headers["Access-Control-Allow-Methods"]) == {
        "get",
        "head",
        "patch",
        "delete",
    }
    # An unknown URL: the preflight passes, so the page can read the real request's 404.
    response = await client.options(f"/no/such/{unique()}", headers=preflight)
    assert response.status == 204
    missing = await client.delete(f"/no/such/{unique()}", headers={"Origin": APP})
    assert missing.status == 404
    assert_cors(missing)


async def test_preflight_from_a_refused_origin_is_a_403_envelope(client: Any) -> None:
    response = await client.options(
        "/users/me", headers={"Origin": EVIL, "Access-Control-Request-Method": "PATCH"}
    )
    assert response.status == 403
    body = await response.json()
    assert_envelope(body, "origin_not_allowed")
    assert "CORS_ALLOWED_ORIGINS" in body["error"]["message"]
    assert_no_cors(response)


async def test_plain_options_is_still_405(client: Any) -> None:
    """Without Access-Control-Request-Method it is no preflight: the 405 lists the methods."""
    response = await client.options("/users/me", headers={"Origin": APP})
    assert response.status == 405
    assert "PATCH" in response.headers["Allow"]
    assert_cors(response)


async def test_error_envelopes_carry_cors_headers(client: Any, alice: Account) -> None:
    """401, 404, 405, 413, 422: the page can read the code, the message and the request id."""
    origin = {"Origin": APP}
    unauthorized = await client.get("/users/me", headers=origin)
    assert unauthorized.status == 401
    assert unauthorized.headers["WWW-Authenticate"] == "Bearer"
    not_found = await client.get(f"/no/such/{unique()}", headers={**alice.headers, **origin})
    wrong_method = await client.put("/users/me", headers={**alice.headers, **origin})
    too_large = await client.post(
        "/users/me/password",
        data=io.BytesIO(b'{"x": "' + b"x" * 2 * 1024 * 1024 + b'"}'),
        headers={**alice.headers, **origin, "Content-Type": "application/json"},
    )
    invalid = await client.patch(
        "/users/me", json={"email": 5}, headers={**alice.headers, **origin}
    )
    for response, status in (
        (unauthorized, 401),
        (not_found, 404),
        (wrong_method, 405),
        (too_large, 413),
        (invalid, 422),
    ):
        assert response.status == status
        assert_cors(response)
        assert (await response.json())["error"]["request_id"] == response.headers["X-Request-ID"]


async def test_event_stream_and_websocket_follow_the_same_list(client: Any, alice: Account) -> None:
    events = await client.get(
        "/realtime/events", params={"channels": unique()}, headers={**alice.headers, "Origin": APP}
    )
    assert events.status == 200
    assert_cors(events)
    events.close()
    refused = await client.get(
        "/realtime/events", params={"channels": unique()}, headers={**alice.headers, "Origin": EVIL}
    )
    assert refused.status == 403
    assert_envelope(await refused.json(), "origin_not_allowed")
    assert_no_cors(refused)
    ws = await client.ws_connect("/realtime/ws", headers={**alice.headers, "Origin": APP})
    assert (await ws.receive_json(timeout=5))["type"] == "connected"
    await ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as handshake:
        await client.ws_connect("/realtime/ws", headers={**alice.headers, "Origin": EVIL})
    assert handshake.value.status == 403


async def test_star_allows_any_origin_without_credentials(
    aiohttp_client: Any, settings: Settings, alice: Account
) -> None:
    client = await aiohttp_client(
        create_app(settings.model_copy(update={"CORS_ALLOWED_ORIGINS": "*"}))
    )
    response = await client.get("/users/me", headers={**alice.headers, "Origin": EVIL})
    assert response.status == 200
    assert_cors(response, "*")  # literal `*`: a browser refuses it to a credentialed request
    preflight = await client.options(
        "/users/me", headers={"Origin": EVIL, "Access-Control-Request-Method": "PATCH"}
    )
    assert preflight.status == 204
    assert preflight.headers[ACAO] == "*"
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    opaque = await client.get("/users/me", headers={**alice.headers, "Origin": "null"})
    assert_no_cors(opaque)  # a sandboxed page or a file is not an origin, even under `*`


async def test_by_default_no_other_origin_is_allowed(
    aiohttp_client: Any, settings: Settings, alice: Account
) -> None:
    client = await aiohttp_client(
        create_app(settings.model_copy(update={"CORS_ALLOWED_ORIGINS": ""}))
    )
    response = await client.get("/users/me", headers={**alice.headers, "Origin": APP})
    assert response.status == 200
    assert_no_cors(response)
    assert "Vary" not in response.headers
    preflight = await client.options(
        "/users/me", headers={"Origin": APP, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status == 403


@pytest.mark.parametrize("configured", [True, False])
async def test_answers_of_the_http_parser_carry_cors_when_any_origin_is_allowed(
    aiohttp_client: Any, settings: Settings, configured: bool
) -> None:
    """A header too large for the parser (431): it never read the Origin, so the answer says
    `*` (a fixed message and a fresh id) when cross-origin pages are allowed, else nothing."""
    origins = settings.CORS_ALLOWED_ORIGINS if configured else ""
    client = await aiohttp_client(
        create_app(settings.model_copy(update={"CORS_ALLOWED_ORIGINS": origins}))
    )
    head = f"GET /users/me HTTP/1.1\r\nHost: test\r\nOrigin: {APP}\r\n".encode()
    status, headers, body = await raw_request(
        client, head + b"Authorization: " + HUGE + b"\r\n\r\n"
    )
    assert status == 431
    assert_envelope(json.loads(body), "header_too_large")
    if configured:
        assert headers["access-control-allow-origin"] == "*"
        assert headers["access-control-expose-headers"] == "X-Request-ID"
    else:
        assert not [name for name in headers if name.startswith("access-control-")]


def test_setting_refuses_what_is_not_an_origin() -> None:
    for bad in ("https://app.example.org/spa", "app.example.org", "https://x.example?q=1"):
        with pytest.raises(ValidationError, match="CORS_ALLOWED_ORIGINS"):
            make_settings(CORS_ALLOWED_ORIGINS=bad)
    assert make_settings(CORS_ALLOWED_ORIGINS="https://a.example/, app://shell, *")


def test_ws_allowed_origins_is_read_as_the_deprecated_name(monkeypatch: Any, caplog: Any) -> None:
    from server.kernel.settings import load_settings

    monkeypatch.setenv("WS_ALLOWED_ORIGINS", APP)
    monkeypatch.delenv("CORS_ALLOWED_ORIGINS", raising=False)
    loaded = load_settings(_env_file=None)
    assert loaded.CORS_ALLOWED_ORIGINS == APP
    assert "WS_ALLOWED_ORIGINS is deprecated: it is read as CORS_ALLOWED_ORIGINS" in caplog.text
    assert "not a setting" not in caplog.text
