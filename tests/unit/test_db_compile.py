"""The executor compiles Core statements for psycopg2 with bind processors applied."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from storage.sql import compile_statement
from storage.tables import outbox, tasks


def test_json_values_are_serialized_and_in_lists_expanded() -> None:
    task_id = uuid.uuid4()
    sql, params = compile_statement(
        sa.insert(tasks).values(id=task_id, name="n", payload={"a": [1, 2]}), None
    )
    assert "%(payload)s" in sql
    assert params["payload"] == '{"a": [1, 2]}'
    sql, params = compile_statement(sa.select(outbox).where(outbox.c.id.in_([1, 2, 3])), None)
    assert "POSTCOMPILE" not in sql
    assert sorted(v for v in params.values() if isinstance(v, int)) == [1, 2, 3]


def test_plain_sql_passes_through() -> None:
    assert compile_statement("SELECT 1", None) == ("SELECT 1", {})
