"""The Origin check of /realtime/ws and /realtime/events compares whole origins (scheme, host
and port, default ports implied), against the server's own and WS_ALLOWED_ORIGINS: a page
served over https is not the http server's page, nor is another port's."""

from __future__ import annotations

from typing import Any

import pytest
from yarl import URL

from tests.integration.test_http_errors import assert_envelope
from tests.integration.test_realtime_auth import OPEN, SURFACES, attempt, refused_path
from tests.integration.test_realtime_channels import custom_client
from tests.support.accounts import Account


def own_origin(client: Any) -> URL:
    return URL(str(client.make_url("/"))).origin()


async def assert_refused(client: Any, surface: str, headers: dict[str, str]) -> None:
    assert (await attempt(client, surface, headers))[0] == 403, headers
    response = await client.get(refused_path(surface), headers=headers)
    assert response.status == 403
    assert_envelope(await response.json(), "origin_not_allowed")


@pytest.mark.parametrize("surface", SURFACES)
async def test_the_same_host_with_another_scheme_or_port_is_refused(
    client: Any, alice: Account, surface: str
) -> None:
    own = own_origin(client)
    assert own.scheme == "http"
    for origin in (own.with_scheme("https"), own.with_port((own.port or 80) + 1)):
        await assert_refused(client, surface, {**alice.headers, "Origin": str(origin)})
    status, hello = await attempt(client, surface, {**alice.headers, "Origin": str(own)})
    assert status == OPEN[surface]
    assert hello is not None and hello["user_id"] == alice.id


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(
    ("host", "origin", "allowed"),
    [
        ("chat.example.org", "http://chat.example.org", True),
        ("chat.example.org", "http://chat.example.org:80", True),
        ("chat.example.org:80", "http://CHAT.example.org", True),
        ("chat.example.org", "https://chat.example.org", False),
        ("chat.example.org", "http://chat.example.org:8080", False),
        ("chat.example.org", "http://example.org", False),
        ("chat.example.org", "chat.example.org", False),
    ],
)
async def test_the_requests_own_origin_is_scheme_host_and_port(
    client: Any, alice: Account, surface: str, host: str, origin: str, allowed: bool
) -> None:
    headers = {**alice.headers, "Host": host, "Origin": origin}
    if allowed:
        assert (await attempt(client, surface, headers))[0] == OPEN[surface]
    else:
        await assert_refused(client, surface, headers)


@pytest.mark.parametrize("surface", SURFACES)
async def test_listed_origins_are_compared_whole(
    aiohttp_client: Any, settings: Any, alice: Account, surface: str
) -> None:
    client = await custom_client(
        aiohttp_client, settings, WS_ALLOWED_ORIGINS="https://app.example.org, app://shell"
    )
    for origin in ("https://app.example.org", "https://app.example.org:443", "app://shell"):
        headers = {**alice.headers, "Origin": origin}
        assert (await attempt(client, surface, headers))[0] == OPEN[surface], origin
    for origin in ("http://app.example.org", "https://app.example.org:8443", "app://other"):
        await assert_refused(client, surface, {**alice.headers, "Origin": origin})
