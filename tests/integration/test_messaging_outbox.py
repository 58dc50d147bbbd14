"""The outbox's deletion of published rows: it removes exactly those rows, and its
transaction alone commits without waiting for the WAL flush (a lost deletion only
republishes rows, which the consumers' inbox drops); the pooled connection keeps
synchronous commits for whoever uses it next."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from storage import outbox
from storage.db import create_pool, transaction

pytestmark = pytest.mark.usefixtures("clean_tables")


async def _add(conn: Any) -> uuid.UUID:
    message_id = uuid.uuid4()
    await outbox.add(
        conn, outbox.Entry(message_id, exchange="x", routing_key="tasks", body=b"{}", headers={})
    )
    return message_id


async def test_delete_removes_only_the_published_rows(db: Any) -> None:
    async with transaction(db) as conn:
        published, kept = await _add(conn), await _add(conn)
    async with transaction(db) as conn:
        rows = {row["message_id"]: row["id"] for row in await outbox.claim(conn, 10)}
        await outbox.delete(conn, [rows[published]])
    async with transaction(db) as conn:
        left = await conn.fetch_all("SELECT message_id FROM outbox")
    assert [row["message_id"] for row in left] == [kept]


async def test_only_the_deleting_transaction_skips_the_flush_wait(settings: Any) -> None:
    one = settings.model_copy(update={"DB_POOL_SIZE": 1, "DB_MAX_OVERFLOW": 0})
    async with create_pool(one) as pool:
        async with transaction(pool) as conn:
            before = await conn.fetch_all(
                "SELECT pg_backend_pid() AS pid, current_setting('synchronous_commit') AS sync"
            )
            await outbox.delete(conn, [-1])
            during = await conn.fetch_all("SELECT current_setting('synchronous_commit') AS sync")
        async with transaction(pool) as conn:
            after = await conn.fetch_all(
                "SELECT pg_backend_pid() AS pid, current_setting('synchronous_commit') AS sync"
            )
    assert before[0]["sync"] == "on"
    assert during[0]["sync"] == "off"
    assert after == before  # the same pooled connection, back to synchronous commits
