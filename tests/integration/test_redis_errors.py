"""Redis unreachable (a TCP proxy the test stops): every REST route that needs it answers 503
`service_unavailable` with the envelope and Retry-After, never a 500 with a traceback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.app import create_app
from tests.conftest import make_settings
from tests.support.accounts import Account
from tests.support.proxy import TcpProxy

pytestmark = [pytest.mark.usefixtures("clean_tables")]


@pytest.fixture
async def redis_proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/realtime/broadcast", {"channel": "public:down", "data": 1}),
        ("POST", "/realtime/send", {"user_id": 1, "data": 1}),
        ("POST", "/realtime/send", {"client_id": "0" * 32, "data": 1}),
        ("GET", "/realtime/channels/public:down/presence", None),
        ("GET", "/realtime/stats", None),
    ],
)
async def test_redis_down_is_503_on_every_realtime_route(
    aiohttp_client: Any,
    settings: Any,
    redis_proxy: TcpProxy,
    superuser: Account,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    body: Any,
) -> None:
    proxied = make_settings(
        POSTGRES_DB=settings.POSTGRES_DB, REDIS_URL=f"redis://127.0.0.1:{redis_proxy.port}/0"
    )
    client = await aiohttp_client(create_app(proxied))
    await redis_proxy.stop()

    response = await client.request(method, path, json=body, headers=superuser.headers)

    assert response.status == 503, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == "service_unavailable"
    assert "Redis" in error["message"]
    assert response.headers["Retry-After"] == "1"
    assert "Traceback" not in caplog.text
