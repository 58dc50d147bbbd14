"""SQL for psycopg2: SQLAlchemy Core statements compiled once per shape (with their bind
processors applied), and batches of rows as one JSON parameter."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from sqlalchemy.dialects.postgresql import psycopg2 as pg_dialect
from sqlalchemy.sql import ClauseElement

_DIALECT = pg_dialect.dialect()  # type: ignore[no-untyped-call]  # stateless; safe to share

# Compiled SQL by statement shape. Compiling costs ~150 us, looking up and filling in
# parameters ~25 us: this is the same memoization SQLAlchemy's engines do, of a pure function
# (shape -> SQL text), bounded, and it holds no connection or request state.
_COMPILED: dict[Any, Any] = {}
_COMPILED_MAX = 2000


# PRIVATE-API SQLAlchemy 2.1: ClauseElement._generate_cache_key, SQLCompiler._bind_processors
# and _process_parameters_for_postcompile (what a Connection does to execute a statement).
def _compiled(statement: ClauseElement) -> tuple[Any, Any]:
    cache_key = statement._generate_cache_key()
    if cache_key is None:  # a construct SQLAlchemy cannot cache: compile it every time
        return statement.compile(dialect=_DIALECT), None
    compiled = _COMPILED.get(cache_key.key)
    if compiled is None:
        compiled = _DIALECT.statement_compiler(_DIALECT, statement, cache_key=cache_key)
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[cache_key.key] = compiled
    return compiled, cache_key.bindparams


def compile_statement(
    statement: ClauseElement | str, params: Mapping[str, Any] | None
) -> tuple[str, dict[str, Any]]:
    """SQL text plus parameters with SQLAlchemy's bind processors (JSON, etc.) applied;
    `IN` lists are expanded into one parameter per element."""
    if isinstance(statement, str):
        return statement, dict(params or {})
    compiled, extracted = _compiled(statement)
    values = compiled.construct_params(params, extracted_parameters=extracted)
    if compiled.post_compile_params:
        expanded = compiled._process_parameters_for_postcompile(values)
        # The expansion's processors cover only the IN lists: keep the others (JSON...).
        processors = {**compiled._bind_processors, **expanded.processors}
        sql, values = expanded.statement, dict(expanded.parameters)
    else:
        sql, values, processors = compiled.string, dict(values), compiled._bind_processors
    for name, processor in processors.items():
        if name in values and values[name] is not None:
            values[name] = processor(values[name])
    return sql, values


def json_batch(rows: Iterable[dict[str, Any]]) -> str:
    """Rows for ONE statement as ONE JSON parameter, each numbered `n` in order: read them
    with `json_to_recordset(CAST(:batch AS json)) AS t(n int, ...)` and keep the order with
    `ORDER BY n`. psycopg2 quotes one string about 10x faster than it adapts arrays."""
    return orjson.dumps([{"n": n, **row} for n, row in enumerate(rows)]).decode()
