"""The database executor: an aiopg pool running SQLAlchemy Core statements compiled for the
psycopg2 dialect (storage/sql.py; aiopg.sa refuses SQLAlchemy 2), inside transactions the
caller owns.

    async with transaction(pool) as conn:
        row = await conn.fetch_one(sa.select(users).where(users.c.id == user_id))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import aiopg
import psycopg2
import psycopg2.errorcodes
import psycopg2.extensions
from aiohttp import web
from opentelemetry import trace
from sqlalchemy.sql import ClauseElement

from server.kernel import spans
from server.kernel.errors import DatabaseUnavailable, IntegrityViolation, InvalidData
from server.kernel.settings import Settings
from storage.sql import compile_statement

Row = dict[str, Any]


class Pool(Protocol):
    """The seam to aiopg's pool (aiopg ships no type hints): what the executor needs of it.
    `create_pool()` returns an aiopg.Pool, which is one."""

    def acquire(self) -> Awaitable[Any]: ...

    def release(self, conn: Any) -> Awaitable[None]: ...


_tracer = trace.get_tracer("storage")


def dsn(settings: Settings, database: str | None = None) -> str:
    """A libpq connection string for the configured server (another database if named)."""
    return str(
        psycopg2.extensions.make_dsn(
            host=settings.POSTGRES_SERVER,
            port=settings.POSTGRES_PORT,
            user=settings.POSTGRES_USER,
            password=settings.POSTGRES_PASSWORD.get_secret_value() or None,
            dbname=database or settings.POSTGRES_DB,
            connect_timeout=max(1, int(settings.DB_CONNECT_TIMEOUT)),
            application_name=settings.APP_NAME,
        )
    )


def create_pool(settings: Settings) -> Any:
    """The pool opens connections on demand (minsize 0), so the server starts while
    PostgreSQL is down and recovers by itself when it returns."""
    return aiopg.create_pool(
        dsn(settings),
        minsize=0,
        maxsize=settings.db_max_connections,
        timeout=settings.DB_STATEMENT_TIMEOUT,
        enable_hstore=False,
        pool_recycle=600,
    )


class Connection:
    """A thin facade over one aiopg cursor: run statements, get rows as dicts."""

    def __init__(self, cursor: Any, raw: Any) -> None:
        self._cursor = cursor
        self.raw = raw  # the aiopg connection, for LISTEN/NOTIFY

    async def execute(
        self, statement: ClauseElement | str, params: Mapping[str, Any] | None = None
    ) -> int:
        """Run a statement; return the number of rows it touched."""
        sql, values = compile_statement(statement, params)
        with spans.span(
            _tracer, "db.query", kind=trace.SpanKind.CLIENT, attributes=_span_attributes(sql)
        ):
            try:
                await self._cursor.execute(sql, values)
            except psycopg2.IntegrityError as error:
                constraint = getattr(error.diag, "constraint_name", None)
                unique = error.pgcode == psycopg2.errorcodes.UNIQUE_VIOLATION
                raise IntegrityViolation(str(error).strip(), constraint, unique=unique) from error
            except psycopg2.DataError as error:
                raise InvalidData(str(error).strip()) from error
            except (TimeoutError, psycopg2.OperationalError) as error:
                raise DatabaseUnavailable(str(error).strip() or "query timed out") from error
        return int(self._cursor.rowcount)

    async def fetch_all(
        self, statement: ClauseElement | str, params: Mapping[str, Any] | None = None
    ) -> list[Row]:
        await self.execute(statement, params)
        rows: Sequence[Sequence[Any]] = await self._cursor.fetchall()
        names = [column.name for column in self._cursor.description]
        return [dict(zip(names, row, strict=True)) for row in rows]

    async def fetch_one(
        self, statement: ClauseElement | str, params: Mapping[str, Any] | None = None
    ) -> Row | None:
        rows = await self.fetch_all(statement, params)
        return rows[0] if rows else None

    async def fetch_value(
        self, statement: ClauseElement | str, params: Mapping[str, Any] | None = None
    ) -> Any:
        await self.execute(statement, params)
        row = await self._cursor.fetchone()
        return None if row is None else row[0]


def _span_attributes(sql: str) -> dict[str, str]:
    return {"db.system": "postgresql", "db.statement": sql[:2000]}


@asynccontextmanager
async def connect(pool: Pool) -> AsyncIterator[Connection]:
    """A connection in autocommit mode: each statement commits on its own."""
    try:
        raw = await pool.acquire()
    except (TimeoutError, psycopg2.OperationalError, OSError) as error:
        raise DatabaseUnavailable(str(error).strip() or "connection timed out") from error
    try:
        async with raw.cursor() as cursor:
            yield Connection(cursor, raw)
    finally:
        await pool.release(raw)


@asynccontextmanager
async def transaction(pool: Pool) -> AsyncIterator[Connection]:
    """One transaction: committed when the block ends, rolled back if it raises (or is
    cancelled). A connection whose rollback fails is closed, never reused mid-transaction."""
    async with connect(pool) as conn:
        await conn.execute("BEGIN")
        try:
            yield conn
        except BaseException:
            try:
                await conn.execute("ROLLBACK")
            except BaseException:
                conn.raw.close()
                raise
            raise
        await conn.execute("COMMIT")


@asynccontextmanager
async def listening(settings: Settings, channel: str) -> AsyncIterator[Any]:
    """A dedicated connection that LISTENs on `channel`; yields its notification queue,
    whose get() raises once the connection is lost."""
    try:
        raw = await aiopg.connect(
            dsn(settings), enable_hstore=False, timeout=settings.DB_CONNECT_TIMEOUT
        )
    except (TimeoutError, psycopg2.OperationalError, OSError) as error:
        raise DatabaseUnavailable(str(error).strip() or "connection timed out") from error
    try:
        async with raw.cursor() as cursor:
            await cursor.execute(f'LISTEN "{channel}"')
        yield raw.notifies
    finally:
        await raw.close()


db_key: web.AppKey[Pool] = web.AppKey("db", Pool)
