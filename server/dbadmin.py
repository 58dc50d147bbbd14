"""Database administration for the CLI: create the database when missing, run Alembic,
report the state. Alembic runs synchronously (psycopg2) with the same settings.
`diagnose()` turns a connection error into one line naming the setting to check."""

from __future__ import annotations

import re
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg2 import sql

from server.kernel.settings import Settings
from storage.db import dsn

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ConnectionProblem:
    """Why PostgreSQL could not be reached, said for a human; never shows the password."""

    message: str
    transient: bool  # worth waiting for: the server may still be starting
    refused: bool = False  # nothing listens there: perhaps PostgreSQL is not started


def diagnose(settings: Settings, error: BaseException) -> ConnectionProblem:
    """Map a driver error to its cause and the setting to check (refused, unknown host,
    timeout, authentication, missing database); anything else keeps the driver's first line."""
    where = f"{settings.POSTGRES_SERVER}:{settings.POSTGRES_PORT}"
    text = str(error).strip()
    lowered = text.lower()
    if "connection refused" in lowered:
        return ConnectionProblem(
            f"PostgreSQL refused the connection at {where}: is it running on that host and "
            "port? Check POSTGRES_SERVER and POSTGRES_PORT",
            transient=True,
            refused=True,
        )
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return ConnectionProblem(
            f"unknown PostgreSQL host {settings.POSTGRES_SERVER!r} (POSTGRES_SERVER, "
            f"port {settings.POSTGRES_PORT}): check POSTGRES_SERVER",
            transient=True,
        )
    if "timeout expired" in lowered or "timed out" in lowered:
        return ConnectionProblem(
            f"no answer from PostgreSQL at {where} within {settings.DB_CONNECT_TIMEOUT:g} s: "
            "check POSTGRES_SERVER and POSTGRES_PORT (and any firewall between)",
            transient=True,
        )
    if "authentication failed" in lowered or ("role" in lowered and "does not exist" in lowered):
        return ConnectionProblem(
            f"PostgreSQL at {where} refused user {settings.POSTGRES_USER!r}: "
            "check POSTGRES_USER / POSTGRES_PASSWORD",
            transient=False,
        )
    if "no password supplied" in lowered:
        return ConnectionProblem(
            f"PostgreSQL at {where} wants a password for user {settings.POSTGRES_USER!r}: "
            "set POSTGRES_PASSWORD",
            transient=False,
        )
    missing = re.search(r'database "([^"]*)" does not exist', text)
    if missing:
        return ConnectionProblem(
            f"PostgreSQL at {where} has no database {missing.group(1)!r}: check POSTGRES_DB, "
            "or create it with `python -m server db ensure`",
            transient=False,
        )
    first_line = text.splitlines()[0] if text else type(error).__name__
    return ConnectionProblem(f"PostgreSQL at {where}: {first_line}", transient=True)


def alembic_config(settings: Settings, database: str | None = None) -> Config:
    config = Config(toml_file=str(PROJECT_ROOT / "pyproject.toml"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["url"] = sqlalchemy_url(settings, database)
    return config


def sqlalchemy_url(settings: Settings, database: str | None = None) -> sa.URL:
    return sa.URL.create(
        "postgresql+psycopg2",
        username=settings.POSTGRES_USER,
        password=settings.POSTGRES_PASSWORD.get_secret_value() or None,
        host=settings.POSTGRES_SERVER,
        port=settings.POSTGRES_PORT,
        database=database or settings.POSTGRES_DB,
    )


def _maintenance_connection(settings: Settings) -> Any:
    connection = psycopg2.connect(dsn(settings, database="postgres"))
    connection.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    return connection


def database_exists(settings: Settings, name: str | None = None) -> bool:
    with closing(_maintenance_connection(settings)) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name or settings.POSTGRES_DB,)
        )
        return cursor.fetchone() is not None


def create_database(settings: Settings, name: str | None = None) -> None:
    with closing(_maintenance_connection(settings)) as connection, connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name or settings.POSTGRES_DB))
        )


def drop_database(settings: Settings, name: str) -> None:
    with closing(_maintenance_connection(settings)) as connection, connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def ensure_database(settings: Settings) -> bool:
    """Create the database if it is missing; True when it was created."""
    if database_exists(settings):
        return False
    try:
        create_database(settings)
    except psycopg2.errors.DuplicateDatabase:
        return False  # another process won the race
    return True


def migrate(settings: Settings, revision: str = "head", database: str | None = None) -> None:
    command.upgrade(alembic_config(settings, database), revision)


def downgrade(settings: Settings, revision: str, database: str | None = None) -> None:
    command.downgrade(alembic_config(settings, database), revision)


def status(settings: Settings, database: str | None = None) -> dict[str, Any]:
    """Current revision, head, and the revisions not yet applied."""
    config = alembic_config(settings, database)
    script = ScriptDirectory.from_config(config)
    engine = sa.create_engine(sqlalchemy_url(settings, database), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    head = script.get_current_head()
    pending = (
        [rev.revision for rev in script.iterate_revisions(head, current) if rev.revision != current]
        if head
        else []
    )
    return {"current": current, "head": head, "pending": list(reversed(pending))}


def info(settings: Settings) -> dict[str, Any]:
    with closing(_maintenance_connection(settings)) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        row = cursor.fetchone()
        version = row[0] if row else "?"
    exists = database_exists(settings)
    result: dict[str, Any] = {
        "server": f"{settings.POSTGRES_SERVER}:{settings.POSTGRES_PORT}",
        "server_version": version,
        "user": settings.POSTGRES_USER,
        "database": settings.POSTGRES_DB,
        "exists": exists,
    }
    if exists:
        result.update(status(settings))
    return result
