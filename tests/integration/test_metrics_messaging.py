"""Messaging metrics: the server's GET /metrics counts the messages it accepted and relayed
and shows the outbox backlog; the worker's listener (workers/process.py `metrics_app`, here
in-process) counts what it processed and dead-lettered, times its jobs, and keeps the same
token rule as the server's /metrics."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from server import runner
from storage import outbox
from storage.db import transaction
from tests.conftest import make_settings
from tests.integration.test_http_errors import assert_envelope
from tests.integration.test_messaging_support import (
    accepted,
    marker,
    publish_raw,
    wait_dead,
    wait_processed,
)
from tests.integration.test_metrics_realtime import parse, scrape, value
from tests.support.accounts import Account
from tests.support.waiting import eventually
from workers.process import metrics_app

pytestmark = pytest.mark.usefixtures("clean_tables")

TOKEN = "worker-scrape-" + "y" * 30


async def test_accepted_and_relayed_messages_are_counted(
    client: Any, admin: Account, alice: Account, db: Any
) -> None:
    assert value(await scrape(client), "messaging_accepted_total") == 0
    body = {"user_id": alice.id, "message": marker()}
    await accepted(client, "user_notification", body, account=admin)
    await accepted(client, "user_notification", {**body, "message": marker()}, account=admin)
    assert value(await scrape(client), "messaging_accepted_total") == 2

    async def relayed() -> bool:
        return value(await scrape(client), "messaging_relayed_total") == 2

    await eventually(relayed)


async def test_the_outbox_backlog_and_its_lag(client: Any, db: Any) -> None:
    message_id = uuid.uuid4()
    async with transaction(db) as conn:
        entry = outbox.Entry(message_id, exchange="x", routing_key="tasks", body=b"{}", headers={})
        await outbox.add(conn, entry)
        # not due for an hour (the relay leaves it), written a minute ago
        await conn.execute(
            "UPDATE outbox SET available_at = now() + interval '1 hour', "
            "created_at = now() - interval '60 seconds' WHERE message_id = %(id)s",
            {"id": message_id},
        )
    samples = await scrape(client)
    assert value(samples, "messaging_outbox_depth") == 1
    assert 60 <= value(samples, "messaging_outbox_lag_seconds") < 120


async def test_the_worker_counts_processed_and_dead_lettered_and_times_jobs(
    aiohttp_client: Any,
    client: Any,
    admin: Account,
    alice: Account,
    worker: Any,
    settings: Any,
    db: Any,
) -> None:
    listener = await aiohttp_client(metrics_app(settings, worker))
    before = await scrape(listener)
    assert value(before, "messaging_worker_consuming") == 1
    body = {"user_id": alice.id, "message": marker()}
    await wait_processed(db, await accepted(client, "user_notification", body, account=admin))
    poison = str(uuid.uuid4())
    await publish_raw(settings, b"not json", poison)
    await wait_dead(settings, poison, "notifications.user")

    async def counted() -> bool:
        samples = await scrape(listener)
        return (
            value(samples, "messaging_processed_total") >= 1
            and value(samples, "messaging_dead_lettered_total") >= 1
        )

    await eventually(counted)
    samples = await scrape(listener)
    # (>= : messages earlier tests left in the queues may be processed here too)
    assert (
        value(
            samples,
            "messaging_job_duration_seconds_count",
            kind="user_notification",
            outcome="processed",
        )
        >= 1
    )
    dead = value(
        samples,
        "messaging_job_duration_seconds_count",
        kind="notifications.user",
        outcome="dead_lettered",
    )
    assert dead >= 1
    health = await listener.get("/health")
    assert health.status == 200
    assert (await health.json())["status"] == "consuming"


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer wrong", f"Basic {TOKEN}", TOKEN]
)
async def test_the_worker_listener_keeps_the_token_rule(
    aiohttp_client: Any, worker: Any, settings: Any, authorization: str | None
) -> None:
    custom = settings.model_copy(update={"METRICS_TOKEN": type(settings.METRICS_TOKEN)(TOKEN)})
    listener = await aiohttp_client(metrics_app(custom, worker))
    headers = {} if authorization is None else {"Authorization": authorization}
    refused = await listener.get("/metrics", headers=headers)
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert_envelope(await refused.json(), "unauthorized")
    allowed = await listener.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status == 200
    assert "messaging_processed_total" in parse_names(await allowed.text())
    assert (await listener.get("/health")).status == 200  # health needs no token


def parse_names(text: str) -> set[str]:
    return {name for name, _ in parse(text)}


def test_server_run_gives_each_worker_its_own_listener_port() -> None:
    settings = make_settings(WORKER_PROCESSES=3, WORKER_METRICS_PORT=9101)
    workers = [c for c in runner.children(settings, "127.0.0.1", 8000) if "workers" in c.argv]
    ports = [(c.env or {}).get("WORKER_METRICS_PORT", "its own setting") for c in workers]
    assert ports == ["its own setting", "9102", "9103"]
    off = make_settings(WORKER_PROCESSES=2, WORKER_METRICS_PORT=0)
    for child in runner.children(off, "127.0.0.1", 8000):
        assert "WORKER_METRICS_PORT" not in (child.env or {})
