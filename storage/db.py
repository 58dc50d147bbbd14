"""The database executor: an aiopg pool running SQLAlchemy Core statements compiled for the
psycopg2 dialect (storage/sql.py; aiopg.sa refuses SQLAlchemy 2), inside transactions the
caller owns.

    async with transaction(pool) as conn:
        row = await conn.fetch_one(sa.select(users).where(users.c.id == user_id))

PostgreSQL going away (down, restarting, refusing) raises DatabaseUnavailable (rendered 503)
in every form the drivers show it while aiopg's pool reconnects: psycopg2's
OperationalError, a timeout, InterfaceError on a connection PostgreSQL closed, and uvloop's
RuntimeError for a file descriptor it still watches from a dropped connection. Anything else
(a programming error) goes through unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
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

# While PostgreSQL restarts, aiopg and uvloop race over file descriptor numbers: a socket
# libpq closed on a failed connection may be reused by the next connection before aiopg
# took the old one out of the loop, and uvloop is left with a closed watcher for that
# number. The next connection given it fails in add_reader, inside pool.acquire():
# `RuntimeError: unable to perform operation on <UVPoll closed=True ...>; the handler is
# closed`. It clears itself (aiopg's closing of that half-made connection removes the
# watcher); it means "PostgreSQL is not reachable right now", so it is DatabaseUnavailable.
_STALE_WATCHER = "the handler is closed"


@contextmanager
def _connecting() -> Iterator[None]:
    """A failure to connect as DatabaseUnavailable, uvloop's stale watcher included; any
    other RuntimeError is not the driver's (a bug) and goes through as it is."""
    try:
        yield
    except (TimeoutError, psycopg2.OperationalError, OSError) as error:
        raise DatabaseUnavailable(str(error).strip() or "connection timed out") from error
    except RuntimeError as error:
        if _STALE_WATCHER not in str(error):
            raise
        message = f"PostgreSQL dropped its connections; reconnecting ({error})"
        raise DatabaseUnavailable(message) from error


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
        with (
            spans.span(
                _tracer, "db.query", kind=trace.SpanKind.CLIENT, attributes=_span_attributes(sql)
            ),
            self._driver_errors(),
        ):
            await self._cursor.execute(sql, values)
        return int(self._cursor.rowcount)

    @contextmanager
    def _driver_errors(self) -> Iterator[None]:
        """psycopg2's errors as the data layer's (server/kernel/errors.py)."""
        try:
            yield
        except psycopg2.IntegrityError as error:
            constraint = getattr(error.diag, "constraint_name", None)
            unique = error.pgcode == psycopg2.errorcodes.UNIQUE_VIOLATION
            raise IntegrityViolation(str(error).strip(), constraint, unique=unique) from error
        except psycopg2.DataError as error:
            raise InvalidData(str(error).strip()) from error
        except (TimeoutError, psycopg2.OperationalError) as error:
            raise DatabaseUnavailable(str(error).strip() or "query timed out") from error
        except psycopg2.InterfaceError as error:  # "cursor/connection already closed"
            if self.raw.closed:  # by PostgreSQL going away; on an open one it is a bug
                raise DatabaseUnavailable(str(error).strip()) from error
            raise

    async def fetch_all(
        self, statement: ClauseElement | str, params: Mapping[str, Any] | None = None
    ) -> list[Row]:
        await self.execute(statement, params)
        with self._driver_errors():
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
        with self._driver_errors():
            row = await self._cursor.fetchone()
        return None if row is None else row[0]


def _span_attributes(sql: str) -> dict[str, str]:
    return {"db.system": "postgresql", "db.statement": sql[:2000]}


@asynccontextmanager
async def connect(pool: Pool) -> AsyncIterator[Connection]:
    """A connection in autocommit mode: each statement commits on its own."""
    with _connecting():
        raw = await pool.acquire()
    try:
        async with raw.cursor() as cursor:
            yield Connection(cursor, raw)
    finally:
        await pool.release(raw)


@asynccontextmanager
async def transaction(pool: Pool) -> AsyncIterator[Connection]:
    """One transaction: committed when the block ends, rolled back if it raises (or is
    cancelled). A connection whose rollback fails is closed, never reused mid-transaction,
    and the error that stopped the block is the one raised (a rollback fails mostly because
    the connection is gone, which that error already says)."""
    async with connect(pool) as conn:
        await conn.execute("BEGIN")
        try:
            yield conn
        except BaseException:
            try:
                await conn.execute("ROLLBACK")
            except Exception:
                conn.raw.close()
            except BaseException:
                conn.raw.close()
                raise
            raise
        await conn.execute("COMMIT")


@asynccontextmanager
async def listening(settings: Settings, channel: str) -> AsyncIterator[Any]:
    """A dedicated connection that LISTENs on `channel`; yields its notification queue,
    whose get() raises once the connection is lost."""
    with _connecting():
        raw = await aiopg.connect(
            dsn(settings), enable_hstore=False, timeout=settings.DB_CONNECT_TIMEOUT
        )
    try:
        async with raw.cursor() as cursor:
            await cursor.execute(f'LISTEN "{channel}"')
        yield raw.notifies
    finally:
        await raw.close()


db_key: web.AppKey[Pool] = web.AppKey("db", Pool)
