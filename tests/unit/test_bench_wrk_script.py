"""The benchmark's wrk script carries a request's method, headers and body (a bearer token,
JSON) verbatim in Lua long-bracket strings, whatever brackets they contain."""

from __future__ import annotations

import pytest

from bench.loadgen import _lua_string


@pytest.mark.parametrize(
    "value", ["", "plain", "a]", "a]=", "x]=]y", "]]", "]==]]=]", '{"a":[[1],[2]]}', "[["]
)
def test_long_brackets_close_only_at_the_end(value: str) -> None:
    literal = _lua_string(value)
    level = literal.index("[", 1)  # "[" + "=" * level + "["
    close = "]" + "=" * (level - 1) + "]"
    assert literal.startswith("[" + "=" * (level - 1) + "[")
    assert literal[level + 1 : -len(close)] == value
    assert literal.find(close, level + 1) == len(literal) - len(close)
