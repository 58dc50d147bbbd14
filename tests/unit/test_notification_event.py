"""One notification event (server/hub/notifications.py), whoever stored the notification, and
the SDK's reading of it (realtime_client.Notification)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from realtime_client import Notification

from server.hub.notifications import notification_event

CREATED = datetime(2025, 1, 31, 9, 15, 2, 123456, tzinfo=UTC)


def _row(**overrides: Any) -> dict[str, Any]:
    row = {
        "id": 42,
        "user_id": 7,
        "channel": None,
        "title": "Ready",
        "body": "Your export is ready",
        "level": "success",
        "data": {"export": 12},
        "message_id": None,
        "created_at": CREATED,
        "read_at": None,
    }
    return {**row, **overrides}


def test_the_event_has_every_field_of_the_stored_notification() -> None:
    message_id = uuid.uuid4()
    event = notification_event(_row(message_id=message_id))
    assert event == {
        "kind": "notification",
        "id": 42,
        "user_id": 7,
        "channel": None,
        "title": "Ready",
        "body": "Your export is ready",
        "level": "success",
        "data": {"export": 12},
        "message_id": str(message_id),
        "created_at": "2025-01-31T09:15:02.123456+00:00",
        "read_at": None,
    }


def test_a_notification_sent_to_a_channel_over_rest() -> None:
    event = notification_event(_row(user_id=None, channel="public:news"))
    assert (event["user_id"], event["channel"], event["message_id"]) == (None, "public:news", None)


def test_the_sdk_reads_the_event_from_a_publication() -> None:
    message_id = uuid.uuid4()
    data = orjson.loads(orjson.dumps(notification_event(_row(message_id=message_id))))
    note = Notification.from_publication({"type": "publication", "channel": "user:7", "data": data})
    assert note == Notification(
        id=42,
        title="Ready",
        body="Your export is ready",
        level="success",
        data={"export": 12},
        created_at=CREATED,
        user_id=7,
        channel=None,
        message_id=str(message_id),
        read_at=None,
    )


def test_the_sdk_ignores_other_publications() -> None:
    for publication in (
        {"type": "publication", "data": {"kind": "direct", "text": "hi"}},
        {"type": "publication", "data": [1, 2]},
        {"type": "publication"},
        "not a frame",
    ):
        assert Notification.from_publication(publication) is None
