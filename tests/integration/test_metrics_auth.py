"""GET /metrics: open when METRICS_TOKEN is empty (the default); with a token set it needs
`Authorization: Bearer <token>` and answers anything else with the 401 envelope."""

from __future__ import annotations

from typing import Any

import pytest

from server.app import create_app
from server.kernel.settings import Settings
from tests.conftest import make_settings
from tests.integration.test_http_errors import assert_envelope

TOKEN = "scrape-me-" + "x" * 30


async def metrics_client(aiohttp_client: Any, base: Settings, **overrides: Any) -> Any:
    return await aiohttp_client(
        create_app(make_settings(POSTGRES_DB=base.POSTGRES_DB, **overrides))
    )


async def test_metrics_are_open_without_a_token(client: Any) -> None:
    response = await client.get("/metrics")
    assert response.status == 200
    assert "http_requests_total" in await response.text()


async def test_metrics_with_the_token(aiohttp_client: Any, settings: Settings) -> None:
    client = await metrics_client(aiohttp_client, settings, METRICS_TOKEN=TOKEN)
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200
    assert "http_requests_total" in await response.text()


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN],
)
async def test_metrics_without_the_right_token_are_401(
    aiohttp_client: Any, settings: Settings, authorization: str | None
) -> None:
    client = await metrics_client(aiohttp_client, settings, METRICS_TOKEN=TOKEN)
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get("/metrics", headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert_envelope(await response.json(), "unauthorized")
    assert "http_requests_total" not in await response.text()


def test_the_token_is_hidden_from_repr() -> None:
    settings = make_settings(METRICS_TOKEN=TOKEN)
    assert TOKEN not in repr(settings)
    assert settings.METRICS_TOKEN.get_secret_value() == TOKEN
