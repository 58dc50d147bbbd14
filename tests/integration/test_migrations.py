"""The schema comes only from Alembic: migrations match the metadata exactly, and they can
be undone to base and replayed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from server import dbadmin
from server.kernel.settings import Settings
from storage.tables import metadata


@pytest.fixture
def scratch_database(base_settings: Settings) -> Iterator[str]:
    name = f"rt_migrations_{uuid.uuid4().hex[:8]}"
    dbadmin.create_database(base_settings, name)
    yield name
    dbadmin.drop_database(base_settings, name)


def differences(settings: Settings, database: str) -> list[Any]:
    engine = sa.create_engine(
        dbadmin.sqlalchemy_url(settings, database), poolclass=sa.pool.NullPool
    )
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def tables(settings: Settings, database: str) -> set[str]:
    engine = sa.create_engine(
        dbadmin.sqlalchemy_url(settings, database), poolclass=sa.pool.NullPool
    )
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_autogenerate_finds_no_difference(base_settings: Settings) -> None:
    assert differences(base_settings, base_settings.POSTGRES_DB) == []


def test_downgrade_to_base_and_upgrade_again(
    base_settings: Settings, scratch_database: str
) -> None:
    dbadmin.migrate(base_settings, database=scratch_database)
    assert tables(base_settings, scratch_database) == set(metadata.tables)
    assert dbadmin.status(base_settings, scratch_database)["pending"] == []

    dbadmin.downgrade(base_settings, "base", database=scratch_database)
    assert tables(base_settings, scratch_database) == set()
    status = dbadmin.status(base_settings, scratch_database)
    assert status["current"] is None
    assert status["pending"] and status["pending"][-1] == status["head"]

    dbadmin.migrate(base_settings, database=scratch_database)
    assert differences(base_settings, scratch_database) == []
