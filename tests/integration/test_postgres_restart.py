"""PostgreSQL itself restarted (`pg_ctlcluster ... stop -m fast`, about 1 s down, `start`)
while a real server process (uvloop, as in production) answers 200 requests a second that
read and write the database: every answer is a success or a 503 with the envelope and
Retry-After, never a 500 (aiopg's pool meets closed connections and file descriptors in
many ways while PostgreSQL goes away), and the server serves again by itself after."""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.support.accounts import Account
from tests.support.nodes import Node, server_process
from tests.support.waiting import eventually

pytestmark = [pytest.mark.usefixtures("clean_tables"), pytest.mark.disruptive, pytest.mark.slow]

RATE = 200  # requests a second


def pg_ctl(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    if action == "stop":
        command += ["-m", "fast"]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


@pytest.fixture
async def server(settings: Any) -> AsyncIterator[Node]:
    async with server_process(settings) as started:
        yield started


def requests_for(n: int) -> tuple[str, str, Any]:
    """A mix of reads and writes (method, path, JSON body)."""
    kinds: list[tuple[str, str, Any]] = [
        ("GET", "/users/me", None),
        ("GET", "/users/me/notifications", None),
        ("POST", "/tasks/example", {"seconds": 0, "payload": n}),
        ("GET", "/auth/sessions", None),
    ]
    return kinds[n % len(kinds)]


async def test_requests_across_a_postgres_restart_are_answered_2xx_or_503(
    server: Node, alice: Account
) -> None:
    answers: list[tuple[str, int, Any, str | None]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def request(n: int) -> None:
            method, path, body = requests_for(n)
            async with session.request(
                method,
                f"{server.base}{path}",
                json=body,
                headers=alice.headers,
                timeout=aiohttp.ClientTimeout(total=60),
            ) as response:
                data = await response.json(content_type=None)
                answers.append(
                    (f"{method} {path}", response.status, data, response.headers.get("Retry-After"))
                )

        async def load(stop: asyncio.Event) -> None:
            sent: list[asyncio.Task[None]] = []
            n = 0
            while not stop.is_set():
                sent.append(asyncio.ensure_future(request(n)))
                n += 1
                await asyncio.sleep(1 / RATE)
            await asyncio.gather(*sent)

        stop = asyncio.Event()
        loader = asyncio.ensure_future(load(stop))
        try:
            await asyncio.sleep(1.5)
            await asyncio.to_thread(pg_ctl, "stop")
            await asyncio.sleep(1.0)
        finally:
            await asyncio.to_thread(pg_ctl, "start")
        await asyncio.sleep(2.0)
        stop.set()
        await loader

        async def serving_again() -> bool:
            async with session.get(f"{server.base}/users/me", headers=alice.headers) as response:
                return response.status == 200

        await eventually(serving_again, timeout=30, interval=0.2)

    statuses = collections.Counter((what, status) for what, status, _, _ in answers)
    print("answers", dict(statuses))
    failed = [(what, status, body) for what, status, body, _ in answers if status >= 500]
    assert all(status == 503 for _, status, _ in failed), [f for f in failed if f[1] != 503][:5]
    for _, status, body, retry_after in answers:
        if status == 503:
            assert body["error"]["code"] in {"database_unavailable", "service_unavailable"}, body
            assert retry_after is not None
    assert all(200 <= status < 300 for _, status, _, _ in answers if status != 503), statuses
    assert sum(1 for _, status, _, _ in answers if status == 503) > 0  # it was really down
    assert "Traceback" not in server.log_text(), server.log_text()[-4000:]
