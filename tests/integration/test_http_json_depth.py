"""JSON nested too deeply is refused at the edge (422 `too_deep`, nothing stored) on every
endpoint that takes a JSON body, however deep (even past what the parser itself accepts);
a body just within MAX_JSON_DEPTH is accepted as before."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from server.kernel.jsonutil import MAX_JSON_DEPTH
from storage.db import transaction
from tests.integration.test_http_errors import assert_envelope
from tests.support.accounts import Account

pytestmark = pytest.mark.usefixtures("clean_tables")

# Every table a refused request could have written to (and that only grows: the relay
# empties the outbox behind an accepted request's back).
STORED = (
    "SELECT (SELECT count(*) FROM tasks) + (SELECT count(*) FROM messages)"
    " + (SELECT count(*) FROM notifications)"
)


def nested(levels: int) -> Any:
    """`levels` arrays, one inside the other: [[[...]]]."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def body_for(path: str, user_id: int, deep: Any) -> dict[str, Any]:
    """A valid body for `path` with `deep` one level below the body's own object."""
    return {
        "/tasks/example": {"seconds": 0, "payload": deep},
        "/messaging/user-notification": {"user_id": user_id, "message": "m", "data": deep},
        "/messaging/system-event": {"event_name": "e", "event_data": deep},
        "/messaging/batch": {
            "messages": [
                {"kind": "system_event", "payload": {"event_name": "e", "event_data": deep}}
            ]
        },
        "/realtime/notifications/send": {"user_id": user_id, "title": "t", "data": deep},
    }[path]


# How many levels the body itself adds above `deep` (the batch nests it in an item's payload).
ABOVE = {"/messaging/batch": 4}
PATHS = [
    "/tasks/example",
    "/messaging/user-notification",
    "/messaging/system-event",
    "/messaging/batch",
    "/realtime/notifications/send",
]


async def stored(db: Any) -> int:
    async with transaction(db) as conn:
        return int(await conn.fetch_value(STORED, {}))


@pytest.mark.parametrize("path", PATHS)
async def test_300_nested_arrays_are_422_too_deep_and_nothing_is_stored(
    client: Any, admin: Account, db: Any, path: str
) -> None:
    before = await stored(db)
    response = await client.post(
        path, json=body_for(path, admin.id, nested(300)), headers=admin.headers
    )
    assert response.status == 422, await response.text()
    error = assert_envelope(await response.json(), "too_deep")
    assert str(MAX_JSON_DEPTH) in error["message"]
    assert await stored(db) == before
    assert (await client.get("/health/live")).status == 200


@pytest.mark.parametrize("path", PATHS)
async def test_a_body_at_the_limit_is_accepted_one_more_level_is_not(
    client: Any, admin: Account, db: Any, path: str
) -> None:
    within = MAX_JSON_DEPTH - ABOVE.get(path, 1)
    response = await client.post(
        path, json=body_for(path, admin.id, nested(within)), headers=admin.headers
    )
    assert response.status in (201, 202), await response.text()
    before = await stored(db)
    response = await client.post(
        path, json=body_for(path, admin.id, nested(within + 1)), headers=admin.headers
    )
    assert response.status == 422, await response.text()
    assert_envelope(await response.json(), "too_deep")
    assert await stored(db) == before


async def test_nesting_past_the_parsers_own_limit_is_too_deep_too(user_client: Any) -> None:
    """orjson itself stops at 1024 levels; the answer is the same 422, not a 400."""
    raw = b'{"payload": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await user_client.post(
        "/tasks/example", data=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status == 422
    assert_envelope(await response.json(), "too_deep")


async def test_many_shallow_values_are_not_too_deep(user_client: Any) -> None:
    """Brackets in strings and wide shallow values do not count as depth."""
    payload = {"text": "[" * 500, "rows": [[i, {"n": [i]}] for i in range(200)]}
    response = await user_client.post(
        "/tasks/example",
        data=orjson.dumps({"seconds": 0, "payload": payload}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 202, await response.text()
