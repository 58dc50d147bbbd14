"""The notification event: the `data` of the publication that announces a stored notification
on `user:<id>` (or the channel it was sent to), whoever stored it: the worker's notification
jobs or POST /realtime/notifications/send. One shape, documented in docs/PROTOCOL.md
(Notifications); the Python SDK reads it with `realtime_client.Notification`.

    {"kind": "notification", "id", "user_id", "channel", "title", "body", "level", "data",
     "message_id", "created_at", "read_at"}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict


class NotificationEvent(TypedDict):
    kind: Literal["notification"]
    id: int
    user_id: int | None  # None for a notification sent to a channel
    channel: str | None  # None for a notification sent to a user
    title: str
    body: str
    level: str  # info, success, warning or error
    data: Any
    message_id: str | None  # the message that asked for it (None when sent over REST)
    created_at: str  # ISO 8601
    read_at: str | None


def notification_event(row: Mapping[str, Any]) -> NotificationEvent:
    """The event of a stored notification (a row of the notifications table)."""
    message_id, read_at = row["message_id"], row["read_at"]
    return {
        "kind": "notification",
        "id": row["id"],
        "user_id": row["user_id"],
        "channel": row["channel"],
        "title": row["title"],
        "body": row["body"],
        "level": row["level"],
        "data": row["data"],
        "message_id": None if message_id is None else str(message_id),
        "created_at": row["created_at"].isoformat(),
        "read_at": None if read_at is None else read_at.isoformat(),
    }
