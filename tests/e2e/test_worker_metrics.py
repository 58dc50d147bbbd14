"""`python -m workers` with WORKER_METRICS_PORT, as a real process: GET /health says whether
it consumes (200, or 503 while RabbitMQ is out of reach), GET /metrics follows the messages
it processed and keeps the METRICS_TOKEN rule. And the Grafana dashboard in deploy/ uses
only metric names the server or this worker export (compared with live scrapes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.test_messaging_support import accepted, marker, wait_processed
from tests.integration.test_metrics_realtime import parse, scrape, value
from tests.support.accounts import Account
from tests.support.processes import dies_with_parent
from tests.support.proxy import free_port
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.usefixtures("clean_tables")]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "realtime.json"
TOKEN = "worker-token-" + "z" * 30
OUR_NAMES = re.compile(r"\b(?:realtime|messaging|http|process|python)_[a-z0-9_]+\b")


@contextlib.asynccontextmanager
async def worker_process(settings: Any, **env: str) -> AsyncIterator[str]:
    """A worker listening for /metrics and /health; yields its base URL."""
    port = free_port()
    environment = {
        **os.environ,
        "POSTGRES_DB": settings.POSTGRES_DB,
        "REDIS_PREFIX": settings.REDIS_PREFIX,
        "AMQP_PREFIX": settings.AMQP_PREFIX,
        "WORKER_METRICS_PORT": str(port),
        "WORKER_METRICS_HOST": "127.0.0.1",
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers",
        cwd=ROOT,
        preexec_fn=dies_with_parent,
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def get(http: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, str]:
    try:
        async with http.get(url, headers=headers) as response:
            return response.status, await response.text()
    except aiohttp.ClientConnectionError:
        return 0, ""  # not listening yet


async def consuming(http: aiohttp.ClientSession, base: str) -> None:
    async def healthy() -> bool:
        status, body = await get(http, f"{base}/health")
        return status == 200 and json.loads(body)["status"] == "consuming"

    await eventually(healthy, timeout=30, interval=0.2)


async def test_health_and_metrics_follow_the_messages_processed(
    client: Any, admin: Account, alice: Account, settings: Any, db: Any
) -> None:
    async with (
        worker_process(settings, METRICS_TOKEN=TOKEN) as base,
        aiohttp.ClientSession() as http,
    ):
        await consuming(http, base)
        body = {"user_id": alice.id, "message": marker()}
        await wait_processed(db, await accepted(client, "user_notification", body, account=admin))

        async def processed() -> float:
            status, text = await get(http, f"{base}/metrics", Authorization=f"Bearer {TOKEN}")
            assert status == 200, text
            return value(parse(text), "messaging_processed_total")

        assert await eventually(processed) >= 1
        status, text = await get(http, f"{base}/metrics", Authorization=f"Bearer {TOKEN}")
        samples = parse(text)
        count = value(
            samples,
            "messaging_job_duration_seconds_count",
            kind="user_notification",
            outcome="processed",
        )
        assert count >= 1
        assert value(samples, "messaging_worker_consuming") == 1
        status, text = await get(http, f"{base}/metrics")
        assert status == 401
        assert json.loads(text)["error"]["code"] == "unauthorized"
        status, _ = await get(http, f"{base}/metrics", Authorization="Bearer wrong")
        assert status == 401


async def test_health_is_503_while_the_broker_is_out_of_reach(settings: Any) -> None:
    nowhere = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    async with (
        worker_process(settings, RABBITMQ_URL=nowhere) as base,
        aiohttp.ClientSession() as http,
    ):

        async def answers() -> tuple[int, str] | None:
            status, text = await get(http, f"{base}/health")
            return (status, text) if status else None

        status, text = await eventually(answers, timeout=30, interval=0.2)
        assert (status, json.loads(text)["status"]) == (503, "not consuming")
        status, text = await get(http, f"{base}/metrics")
        assert status == 200
        assert value(parse(text), "messaging_worker_consuming") == 0


def dashboard_names() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert exprs, "no queries in the dashboard"
    return {name for expr in exprs for name in OUR_NAMES.findall(re.sub(r"\{[^}]*\}", "", expr))}


async def test_the_dashboard_uses_only_exported_names(
    client: Any, admin: Account, alice: Account, settings: Any, db: Any
) -> None:
    async with worker_process(settings) as base, aiohttp.ClientSession() as http:
        await consuming(http, base)
        body = {"user_id": alice.id, "message": marker()}
        await wait_processed(db, await accepted(client, "user_notification", body, account=admin))

        async def worker_names() -> set[str]:
            _, text = await get(http, f"{base}/metrics")
            names = {name for name, _ in parse(text)}
            return names if "messaging_job_duration_seconds_bucket" in names else set()

        exported = await eventually(worker_names)
    exported |= {name for name, _ in await scrape(client)}
    referenced = dashboard_names()
    assert len(referenced) >= 20
    assert referenced - exported == set()
