"""The nesting bound of server/kernel/jsonutil.py: depth counts arrays and objects only,
the outermost as 1; brackets inside strings and wide values do not count."""

from __future__ import annotations

import orjson
import pytest

from server.kernel.jsonutil import MAX_JSON_DEPTH, too_deep


def arrays(levels: int) -> str:
    return "[" * levels + "]" * levels


def objects(levels: int) -> str:
    return '{"a":' * (levels - 1) + "{}" + "}" * (levels - 1)


@pytest.mark.parametrize("build", [arrays, objects])
def test_the_limit_itself_passes_one_more_level_does_not(build: object) -> None:
    assert callable(build)
    for levels, expected in ((MAX_JSON_DEPTH, False), (MAX_JSON_DEPTH + 1, True)):
        text = build(levels)
        value = orjson.loads(text)
        assert too_deep(text, value) is expected
        assert too_deep(text.encode(), value) is expected


def test_brackets_in_strings_and_wide_values_are_not_depth() -> None:
    value = {"text": "[" * 1000, "rows": [[i, {"n": [i]}] for i in range(500)]}
    assert not too_deep(orjson.dumps(value), value)


def test_scalars_are_never_too_deep() -> None:
    assert not too_deep('"' + "[" * 200 + '"', "[" * 200)
