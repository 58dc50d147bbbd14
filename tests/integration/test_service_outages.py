"""The server starts while its services are down, says which and how to start them, answers
503 naming them, accepts work anyway (outbox), and recovers by itself when they return.

Each service is reached through a TCP proxy that the test stops and starts, so the shared
services themselves keep running for the rest of the suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.app import create_app
from tests.conftest import make_settings
from tests.support.accounts import Account, AsUser
from tests.support.proxy import TcpProxy
from tests.support.waiting import eventually

pytestmark = [pytest.mark.usefixtures("clean_tables"), pytest.mark.slow]


@pytest.fixture
async def proxies() -> AsyncIterator[dict[str, TcpProxy]]:
    made = {
        "postgres": TcpProxy("127.0.0.1", 5432),
        "redis": TcpProxy("127.0.0.1", 6379),
        "rabbitmq": TcpProxy("127.0.0.1", 5672),
    }
    yield made
    for proxy in made.values():
        await proxy.stop()


def proxied_settings(base: Any, proxies: dict[str, TcpProxy]) -> Any:
    return make_settings(
        POSTGRES_SERVER="127.0.0.1",
        POSTGRES_PORT=proxies["postgres"].port,
        REDIS_URL=f"redis://127.0.0.1:{proxies['redis'].port}/0",
        RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:{proxies['rabbitmq'].port}/",
        POSTGRES_DB=base.POSTGRES_DB,
    )


async def ready_status(client: Any) -> tuple[int, dict[str, Any]]:
    response = await client.get("/health/ready")
    return response.status, await response.json()


async def test_start_with_everything_down_then_recover(
    aiohttp_client: Any,
    settings: Any,
    proxies: dict[str, TcpProxy],
    caplog: pytest.LogCaptureFixture,
    alice: Account,
) -> None:
    client = AsUser(await aiohttp_client(create_app(proxied_settings(settings, proxies))), alice)

    status, body = await ready_status(client)
    assert status == 503
    assert body["error"]["code"] == "not_ready"
    assert sorted(body["error"]["details"]["down"]) == ["postgres", "rabbitmq", "redis"]
    for name in ("postgres", "redis", "rabbitmq"):
        assert name in body["error"]["message"]

    hints = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("postgres is unavailable" in m and "pg_ctlcluster" in m for m in hints), hints
    assert any("redis is unavailable" in m and "redis-server" in m for m in hints), hints
    assert any("rabbitmq" in m.lower() and "rabbitmq-server -detached" in m for m in hints), hints

    # Work that needs the database is refused clearly; the process stays healthy.
    response = await client.post("/tasks/example", json={"seconds": 0})
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "database_unavailable"
    assert (await client.get("/health/live")).status == 200

    for proxy in proxies.values():
        await proxy.start()

    async def recovered() -> bool:
        return (await ready_status(client))[0] == 200

    await eventually(recovered, timeout=30, interval=0.5)
    response = await client.post("/tasks/example", json={"seconds": 0})
    assert response.status == 202


async def test_tasks_accepted_while_the_broker_is_down_are_published_after(
    aiohttp_client: Any, settings: Any, proxies: dict[str, TcpProxy], worker: Any, alice: Account
) -> None:
    await proxies["postgres"].start()
    await proxies["redis"].start()
    client = AsUser(await aiohttp_client(create_app(proxied_settings(settings, proxies))), alice)

    ids = []
    for n in range(20):
        response = await client.post("/tasks/example", json={"seconds": 0, "payload": n})
        assert response.status == 202
        ids.append((await response.json())["id"])
    status, body = await ready_status(client)
    assert status == 503
    assert body["error"]["details"]["down"] == ["rabbitmq"]

    await proxies["rabbitmq"].start()  # the worker uses the real broker port all along

    async def all_done() -> bool:
        states = [(await (await client.get(f"/tasks/{i}")).json())["status"] for i in ids]
        return all(state == "succeeded" for state in states)

    await eventually(all_done, timeout=30, interval=0.5)
