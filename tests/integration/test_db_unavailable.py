"""Which driver errors mean "PostgreSQL is unavailable" (503) and which are bugs (500): a
connection PostgreSQL closed under a transaction is DatabaseUnavailable, in the statement and
in the rollback after it; a cursor our own code closed stays a programming error."""

from __future__ import annotations

from typing import Any

import psycopg2
import pytest

from server.kernel.errors import DatabaseUnavailable
from storage.db import transaction


async def query_on_a_terminated_connection(db: Any) -> None:
    """What aiopg is left with when PostgreSQL goes away mid-transaction; the rollback then
    fails too ("cursor already closed"), and the first error must be the one raised."""
    async with transaction(db) as conn:
        async with transaction(db) as other:
            pid = await conn.fetch_value("SELECT pg_backend_pid()")
            await other.execute("SELECT pg_terminate_backend(%(pid)s)", {"pid": pid})
        await conn.fetch_value("SELECT 1")


async def query_on_a_closed_cursor(db: Any) -> None:
    async with transaction(db) as conn:
        conn._cursor.close()
        await conn.fetch_value("SELECT 1")


async def test_a_connection_closed_under_a_transaction_is_unavailable(db: Any) -> None:
    with pytest.raises(DatabaseUnavailable):
        await query_on_a_terminated_connection(db)


async def test_a_cursor_closed_by_our_own_code_is_still_a_bug(db: Any) -> None:
    with pytest.raises(psycopg2.InterfaceError):
        await query_on_a_closed_cursor(db)
