"""JSON encoding in one place: orjson, which knows datetimes, UUIDs and dataclasses; and the
bound on nesting depth that every JSON body and frame from a client must keep."""

from __future__ import annotations

import json
from typing import Any

import orjson
from pydantic import BaseModel


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as error:
        # orjson writes no integer beyond 64 bits, and PostgreSQL's JSONB hands one back for
        # a client's 1e114 (it keeps numbers exact, without exponent): the standard library
        # writes it, exactly.
        if "64-bit" not in str(error):
            raise
        text = json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))
        return text.encode()


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


# Nesting deeper than this is refused where clients' JSON comes in (422 / error frame
# `too_deep`). No message of ours needs more than a few levels; 64 is the default of
# System.Text.Json and far below orjson's 254 levels on encoding, leaving room for the
# levels the server wraps around a client's value (outbox message, notification event,
# publication frame), and bounds the Python recursion of pydantic and our own walks.
MAX_JSON_DEPTH = 64


def too_deep(raw: bytes | str, value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `value`, decoded from `raw`, nests arrays and objects more than `limit` deep
    (the outermost counts as 1). Free for almost every message: the walk runs only when
    `raw` is long enough and has more than `limit` opening brackets at all."""
    if len(raw) <= 2 * limit:  # each level takes an opening and a closing bracket
        return False
    if isinstance(raw, str):
        opening = raw.count("[") + raw.count("{")
    else:
        opening = raw.count(b"[") + raw.count(b"{")
    return opening > limit and _deeper_than(value, limit)


def _deeper_than(value: Any, limit: int) -> bool:
    """A walk level by level (a recursive one could itself overflow), stopping at the first
    level past the limit. `type() is` because the value comes from orjson (exact dict and
    list), and it is several times faster than isinstance here."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 1
    while level:
        if depth > limit:
            return True
        below: list[Any] = []
        for item in level:
            for child in item.values() if type(item) is dict else item:
                if type(child) is dict or type(child) is list:
                    below.append(child)
        level = below
        depth += 1
    return False


def is_depth_error(error: orjson.JSONDecodeError) -> bool:
    """orjson refuses more than 1024 levels while parsing: that is `too_deep` too."""
    return "depth limit" in str(error)
