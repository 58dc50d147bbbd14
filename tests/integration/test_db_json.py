"""JSON and JSONB columns come back exactly as PostgreSQL stores them. psycopg2 reads them
with the json module; orjson would be faster but turns integers beyond 64 bits into floats
without a word, so a row written by SQL or another client would change when read."""

from __future__ import annotations

from typing import Any

from storage.db import connect


async def test_json_and_jsonb_values_come_back_as_python_objects(db: Any) -> None:
    async with connect(db) as conn:
        rows = await conn.fetch_all(
            """SELECT '{"a": [1, 2.5, "x", null, true]}'::jsonb AS b,"""
            """ '{"a": {"b": "é"}}'::json AS j"""
        )
    assert rows == [{"b": {"a": [1, 2.5, "x", None, True]}, "j": {"a": {"b": "é"}}}]


async def test_integers_beyond_64_bits_are_read_exactly(db: Any) -> None:
    big = 123456789012345678901234567890
    async with connect(db) as conn:
        rows = await conn.fetch_all(
            f"""SELECT '{{"n": {big}}}'::jsonb AS b, '[{-big}]'::json AS j"""
        )
    assert rows == [{"b": {"n": big}, "j": [-big]}]
