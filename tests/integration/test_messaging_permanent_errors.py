"""A message that can never succeed (malformed, invalid, a value or a reference PostgreSQL
refuses) is dead-lettered at once, not retried, and logged once in one line: its id, its
kind and why, without a traceback."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from tests.integration.test_messaging_support import publish_raw, user_notification_body, wait_dead

pytestmark = pytest.mark.usefixtures("clean_tables")

NO_SUCH_USER = 2**62 + 12345  # the notification's insert breaks a foreign key

CASES = [
    (user_notification_body(NO_SUCH_USER, "hello"), "user_notification", "foreign key"),
    (
        b'{"type": "user_notification", "payload": {"user_id": 1, "message": "a\\u0000"}}',
        "user_notification",
        "the database refused a value",
    ),
    (b'{"type": "user_notification", "payload": {"user_id": "x"}}', "user_notification", "invalid"),
    (b"\x00not json{", "notifications.user", "not JSON"),
]


@pytest.mark.parametrize(
    ("body", "kind", "why"), CASES, ids=["unknown-user", "nul-text", "invalid", "not-json"]
)
async def test_a_permanent_error_is_logged_once_in_one_line_and_not_retried(
    worker: Any,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    kind: str,
    why: str,
) -> None:
    caplog.set_level(logging.INFO)
    message_id = str(uuid.uuid4())
    await publish_raw(settings, body, message_id)

    dead = await wait_dead(settings, message_id, "notifications.user", timeout=10)
    assert dead["headers"]["x-attempts"] == 1
    assert why in dead["headers"]["x-error"]
    assert worker.retried == 0

    [line] = [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING and message_id in record.getMessage()
    ]
    assert kind in line
    assert why in line
    assert "\n" not in line
    assert not [record for record in caplog.records if record.exc_info or record.exc_text]
    assert "Traceback" not in caplog.text
