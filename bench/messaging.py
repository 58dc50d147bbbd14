"""Shared pieces of the messaging scenarios (bench/scenarios/messaging.py): the accounts (a
superuser made with `python -m server create-superuser`, as an operator would, and a plain
bench user as the notifications' target), the closed-loop poster of
POST /messaging/user-notification, what PostgreSQL says about the accepted messages, and a
sampler of the pipeline's two queues (outbox rows waiting for the relay, RabbitMQ messages
waiting for the worker)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import aiohttp
import aiormq
import orjson

from bench import accounts, loadgen
from bench.harness import Harness
from bench.scenarios import ScenarioError

PATH = "/messaging/user-notification"
BATCH_PATH = "/messaging/batch"
BATCH = 50  # messages per /messaging/batch request
CONCERN = "notifications.user"
JSON = {"Content-Type": "application/json"}
POLL_INTERVAL = 0.2
SAMPLE_INTERVAL = 0.5


# -- accounts --------------------------------------------------------------------------------
async def target_user(client: aiohttp.ClientSession) -> tuple[int, dict[str, str]]:
    """A fresh `user`-role account (the notifications' target): its id and Bearer header."""
    headers = await accounts.bench_user_headers(client)
    async with client.get("/users/me", headers=headers) as answer:
        if answer.status != 200:
            raise ScenarioError(f"GET /users/me: HTTP {answer.status}")
        return int((await answer.json())["id"]), headers


# -- posting ---------------------------------------------------------------------------------
def body(user_id: int, data: Any) -> bytes:
    return orjson.dumps({"user_id": user_id, "message": "bench notification", "data": data})


class Poster:
    """Closed-loop request function: POSTs a notification for `user_id` and remembers the
    message_id of every accepted (202) one. `path` and `fixed_body()` are the request wrk
    repeats instead (whose message ids then come from the database: `ids_since`)."""

    path = PATH
    per_request = 1

    def __init__(self, headers: dict[str, str], user_id: int) -> None:
        self.headers = {**JSON, **headers}
        self.user_id = user_id
        self.ids: list[str] = []

    def fixed_body(self) -> bytes:
        return body(self.user_id, {"i": 0})

    async def __call__(self, client: aiohttp.ClientSession, n: int) -> bool:
        async with client.post(
            PATH, data=body(self.user_id, {"i": n}), headers=self.headers
        ) as answer:
            data = await answer.read()
            if answer.status != 202:
                raise loadgen.UnexpectedAnswer(answer.status)
            self.ids.append(orjson.loads(data)["message_id"])
            return True


class BatchPoster:
    """Closed-loop request function: POSTs BATCH notifications for `user_id` in one
    /messaging/batch request and remembers every accepted message_id."""

    path = BATCH_PATH
    per_request = BATCH

    def __init__(self, headers: dict[str, str], user_id: int) -> None:
        self.headers = {**JSON, **headers}
        self.user_id = user_id
        self.ids: list[str] = []

    def body(self, n: int) -> bytes:
        messages = [
            {
                "kind": "user_notification",
                "payload": {"user_id": self.user_id, "message": "bench", "data": {"i": n, "j": j}},
            }
            for j in range(BATCH)
        ]
        return orjson.dumps({"messages": messages})

    def fixed_body(self) -> bytes:
        return self.body(0)

    async def __call__(self, client: aiohttp.ClientSession, n: int) -> bool:
        async with client.post(BATCH_PATH, data=self.body(n), headers=self.headers) as answer:
            data = await answer.read()
            if answer.status != 202:
                raise loadgen.UnexpectedAnswer(answer.status)
            results = orjson.loads(data)["results"]
            self.ids.extend(r["message_id"] for r in results if r["message_id"] is not None)
            return len(results) == BATCH and all(r["error"] is None for r in results)


# -- PostgreSQL ------------------------------------------------------------------------------
def db_now(harness: Harness) -> datetime:
    with harness.db() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cast(datetime, cursor.fetchone()[0])


def ids_since(harness: Harness, created_by: int, since: datetime) -> list[str]:
    """Ids of the messages `created_by` accepted after `since` (a db_now() reading): what a
    wrk phase, which does not read the answers' bodies, had accepted."""
    with harness.db() as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT id::text FROM messages WHERE created_by = %s AND created_at > %s",
            (created_by, since),
        )
        return [value for (value,) in cursor.fetchall()]


def progress(harness: Harness, ids: list[str]) -> tuple[int, int, float | None]:
    """(processed, dead, epoch of the last processed_at) among the messages `ids`."""
    with harness.db() as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE status = 'processed'),"
            " count(*) FILTER (WHERE status = 'dead'),"
            " extract(epoch FROM max(processed_at))"
            " FROM messages WHERE id = ANY(%s::uuid[])",
            (ids,),
        )
        processed, dead, last = cursor.fetchone()
        return int(processed), int(dead), None if last is None else float(last)


async def wait_processed(
    harness: Harness, ids: list[str], timeout: float
) -> tuple[int, int, float | None]:
    """Poll until every message is processed (or dead), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        processed, dead, last = await asyncio.to_thread(progress, harness, ids)
        if processed + dead >= len(ids) or time.monotonic() > deadline:
            return processed, dead, last
        harness.check_alive()
        await asyncio.sleep(POLL_INTERVAL)


@dataclass
class Outcome:
    latencies_ms: list[float]  # messages.created_at -> processed_at, per processed message
    first_created: float | None  # epoch
    duplicates: int  # messages with more than one notification row
    notifications: int  # notification rows of these messages
    inbox: int  # processed_messages rows of these messages


def outcome(harness: Harness, ids: list[str]) -> Outcome:
    with harness.db() as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM processed_at - created_at) * 1000 FROM messages"
            " WHERE id = ANY(%s::uuid[]) AND processed_at IS NOT NULL",
            (ids,),
        )
        latencies = [float(value) for (value,) in cursor.fetchall()]
        cursor.execute(
            "SELECT extract(epoch FROM min(created_at)) FROM messages WHERE id = ANY(%s::uuid[])",
            (ids,),
        )
        (first,) = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FILTER (WHERE n > 1), coalesce(sum(n), 0) FROM"
            " (SELECT count(*) AS n FROM notifications WHERE message_id = ANY(%s::uuid[])"
            "  GROUP BY message_id) AS per_message",
            (ids,),
        )
        duplicates, rows = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM processed_messages WHERE message_id = ANY(%s::uuid[])", (ids,)
        )
        (inbox,) = cursor.fetchone()
    return Outcome(
        latencies,
        None if first is None else float(first),
        int(duplicates),
        int(rows),
        int(inbox),
    )


def pg_counters(harness: Harness) -> dict[str, int]:
    """Cumulative PostgreSQL counters: commits in the benchmark database, and the cluster's
    WAL records, bytes and syncs (pg_stat_wal: other databases' writes count too)."""
    with harness.db() as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        (commits,) = cursor.fetchone()
        cursor.execute("SELECT wal_records, wal_bytes, wal_sync FROM pg_stat_wal")
        records, size, syncs = cursor.fetchone()
    return {"commits": int(commits), "wal_records": int(records), "wal_bytes": int(size),
            "wal_syncs": int(syncs)}  # fmt: skip


def pg_note(before: dict[str, int], after: dict[str, int], count: int) -> str:
    """Per message: commits, WAL records, WAL bytes and WAL syncs between two pg_counters()."""
    per = {name: (after[name] - before[name]) / max(1, count) for name in before}
    return (
        f"PostgreSQL per message: {per['commits']:.2f} commits, {per['wal_records']:.1f} WAL "
        f"records, {per['wal_bytes']:,.0f} WAL bytes, {per['wal_syncs']:.2f} WAL syncs "
        "(statistics flushed by the backends at most once a second; WAL is cluster-wide)"
    )


def cleanup(harness: Harness, user_ids: list[int]) -> None:
    """Remove what the scenario wrote (its accounts' messages, inbox rows, notifications and
    the accounts), so that the benchmark database does not grow from run to run."""
    with harness.db() as conn, conn.cursor() as cursor:
        cursor.execute(
            "DELETE FROM processed_messages WHERE message_id IN"
            " (SELECT id FROM messages WHERE created_by = ANY(%s))",
            (user_ids,),
        )
        cursor.execute("DELETE FROM messages WHERE created_by = ANY(%s)", (user_ids,))
        cursor.execute("DELETE FROM users WHERE id = ANY(%s)", (user_ids,))  # cascades


# -- where the backlog is ----------------------------------------------------------------------
@dataclass
class Backlog:
    """Samples of the outbox (rows the relay has not published yet) and of the RabbitMQ queue
    notifications.user (ready messages the worker has not taken yet)."""

    outbox: list[int] = field(default_factory=list)
    queue: list[int] = field(default_factory=list)

    def summary(self) -> str:
        def describe(values: list[int]) -> str:
            if not values:
                return "not sampled"
            return f"max {max(values):,}, last {values[-1]:,}"

        return f"outbox rows {describe(self.outbox)}; RabbitMQ ready {describe(self.queue)}"


def _outbox_rows(harness: Harness) -> int:
    with harness.db() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM outbox")
        return int(cursor.fetchone()[0])


async def sample_backlog(harness: Harness, backlog: Backlog, stop: asyncio.Event) -> None:
    """Every SAMPLE_INTERVAL until `stop`: the outbox's size and the queue's ready count
    (a passive queue.declare on a connection of our own)."""
    queue = f"{harness.settings.AMQP_PREFIX}.{CONCERN}"
    connection: Any = None
    channel: Any = None
    with contextlib.suppress(Exception):
        connection = await aiormq.connect(harness.settings.RABBITMQ_URL.get_secret_value())
        channel = await connection.channel()
    try:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                backlog.outbox.append(await asyncio.to_thread(_outbox_rows, harness))
            if channel is not None:
                with contextlib.suppress(Exception):
                    declared = await channel.queue_declare(queue, passive=True)
                    backlog.queue.append(int(declared.message_count or 0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_INTERVAL)
    finally:
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
