"""MAX_CONNECTIONS: a process holding its cap refuses a new WebSocket or event stream before
the upgrade with 503 `server_full` and Retry-After (REST goes on), takes new ones again as
soon as one closes; a cap the open-files limit cannot give stops startup with a message
that says what to raise."""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
from typing import Any

import pytest

from server.kernel.limits import FD_RESERVE, LimitError, connection_cap
from tests.integration.test_http_errors import assert_envelope
from tests.integration.test_realtime_auth import OPEN, SURFACES, attempt
from tests.integration.test_realtime_channels import custom_client
from tests.support.accounts import Account
from tests.support.waiting import eventually


@pytest.mark.parametrize("surface", SURFACES)
async def test_a_full_process_refuses_new_connections_until_one_closes(
    aiohttp_client: Any, settings: Any, alice: Account, surface: str
) -> None:
    client = await custom_client(aiohttp_client, settings, MAX_CONNECTIONS=2)
    held = [await client.ws_connect("/realtime/ws", headers=alice.headers) for _ in range(2)]
    try:
        for ws in held:
            assert (await ws.receive_json(timeout=5))["type"] == "connected"
        status, _ = await attempt(client, surface, alice.headers)
        assert status == 503
        response = await client.get(
            "/realtime/ws" if surface == "ws" else "/realtime/events?channels=public:x",
            headers=alice.headers,
        )
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        error = assert_envelope(await response.json(), "server_full")
        assert "maximum of 2 connections" in error["message"]
        assert (await client.get("/users/me", headers=alice.headers)).status == 200
    finally:
        await held.pop().close()

    async def opens() -> bool:
        return (await attempt(client, surface, alice.headers))[0] == OPEN[surface]

    await eventually(opens, timeout=5)
    for ws in held:
        await ws.close()


def test_the_cap_follows_the_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = connection_cap(0) + FD_RESERVE  # raised the soft limit to the hard one
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == limit
    assert hard == resource.RLIM_INFINITY or limit == hard
    assert connection_cap(100) == 100
    with pytest.raises(LimitError) as refused:
        connection_cap(limit)  # the reserve does not fit any more
    assert f"MAX_CONNECTIONS={limit}" in str(refused.value)
    assert "RLIMIT_NOFILE" in str(refused.value)
    del soft


async def test_the_server_does_not_start_with_a_cap_beyond_the_limit(settings: Any) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    wanted = 10_000_000 if hard == resource.RLIM_INFINITY else hard + 1
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "serve", "--port", "1",
        env={"POSTGRES_DB": settings.POSTGRES_DB, "MAX_CONNECTIONS": str(wanted),
             "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    message = stderr.decode()
    assert f"cannot start: MAX_CONNECTIONS={wanted}" in message
    assert "RLIMIT_NOFILE" in message and "ulimit" in message
