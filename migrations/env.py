"""Alembic environment: the schema is storage.tables.metadata; the database URL comes from
the same Settings the server reads (or from `config.attributes["url"]` when a caller,
such as the test suite, names another database)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import context

from server.kernel.settings import load_settings
from storage.tables import metadata

config = context.config
log = logging.getLogger("alembic.env")


def database_url() -> sa.URL:
    given = config.attributes.get("url")
    if given is not None:
        return sa.make_url(given) if isinstance(given, str) else given
    settings = load_settings()
    return sa.URL.create(
        "postgresql+psycopg2",
        username=settings.POSTGRES_USER,
        password=settings.POSTGRES_PASSWORD.get_secret_value() or None,
        host=settings.POSTGRES_SERVER,
        port=settings.POSTGRES_PORT,
        database=settings.POSTGRES_DB,
    )


def run_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=metadata,
        literal_binds=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = sa.create_engine(database_url(), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
