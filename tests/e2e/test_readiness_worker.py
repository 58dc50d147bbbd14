"""GET /health/ready says whether a worker consumes the queues, from the heartbeats of real
`python -m workers` processes: `consuming` while one runs, `absent` once it is stopped
(at once) or killed (within its heartbeat's lifetime). The server stays ready (it still
accepts messages into the outbox) unless READY_REQUIRES_WORKER asks for a 503."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import pytest

from server.app import create_app
from tests.conftest import make_settings
from tests.integration.test_messaging_support import ROOT, cli_env
from tests.support.processes import dies_with_parent
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def start_worker(settings: Any) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers",
        cwd=ROOT,
        preexec_fn=dies_with_parent,
        env=cli_env(settings),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def stop(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    if process.returncode is None:
        process.send_signal(sig)
    await asyncio.wait_for(process.wait(), timeout=30)


async def readiness(client: Any) -> tuple[int, dict[str, Any]]:
    response = await client.get("/health/ready")
    body = await response.json()
    if response.status == 503:
        return 503, body["error"]["details"]["worker"]
    return response.status, body["worker"]


@pytest.mark.timeout(120)
async def test_readiness_reports_the_worker_consuming_stopped_and_killed(
    client: Any, aiohttp_client: Any, settings: Any
) -> None:
    strict = await aiohttp_client(
        create_app(make_settings(POSTGRES_DB=settings.POSTGRES_DB, READY_REQUIRES_WORKER=True))
    )

    async def worker_is(status: str) -> bool:
        return (await readiness(client))[1]["status"] == status

    await eventually(lambda: worker_is("absent"), timeout=15)  # none runs yet
    status, worker = await readiness(client)
    assert (status, worker["consuming"]) == (200, 0)  # the server alone is ready
    assert (await readiness(strict))[0] == 503

    process = await start_worker(settings)
    try:
        await eventually(lambda: worker_is("consuming"), timeout=30)
        status, worker = await readiness(client)
        assert status == 200
        assert worker["live"] >= 1 and worker["consuming"] >= 1
        assert worker["last_heartbeat_age_seconds"] < 5
        assert (await readiness(strict))[0] == 200

        await stop(process, signal.SIGTERM)  # a stopping worker withdraws its heartbeat
        status, worker = await readiness(client)
        assert (status, worker["status"]) == (200, "absent")
        response = await strict.get("/health/ready")
        assert response.status == 503
        error = (await response.json())["error"]
        assert error["code"] == "not_ready"
        assert "no worker is consuming" in error["message"]
        assert error["details"]["down"] == []

        process = await start_worker(settings)
        await eventually(lambda: worker_is("consuming"), timeout=30)
        await stop(process, signal.SIGKILL)  # nothing withdrawn: the heartbeat expires
        await eventually(lambda: worker_is("absent"), timeout=12)
        assert (await readiness(client))[0] == 200
    finally:
        await stop(process, signal.SIGKILL)


async def test_a_worker_that_lost_the_broker_is_absent_at_once(client: Any, worker: Any) -> None:
    """The worker of the outage: alive, heartbeating, but not consuming (here its broker
    connection is closed and not reopened); readiness says so at its next heartbeat, which
    losing the connection sends at once."""

    async def worker_is(status: str) -> bool:
        return (await readiness(client))[1]["status"] == status

    async def only_this_one_consuming() -> bool:  # any killed before it has expired
        state = (await readiness(client))[1]
        return bool((state["status"], state["live"]) == ("consuming", 1))

    await eventually(only_this_one_consuming, timeout=15)
    await worker.amqp.close()
    await eventually(lambda: worker_is("absent"), timeout=1)
    status, state = await readiness(client)
    assert (status, state["live"], state["consuming"]) == (200, 1, 0)
