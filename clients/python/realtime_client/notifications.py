"""Notifications as the SDK reads them: the server publishes a notification event on
`user:<id>` (or the channel it was sent to) whenever it stores one, whoever sent it
(docs/PROTOCOL.md, Notifications).

    async for frame in client.messages():
        note = Notification.from_publication(frame)
        if note is not None:
            print(note.level, note.title)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Notification:
    id: int
    title: str
    body: str
    level: str  # info, success, warning or error
    data: Any
    created_at: datetime
    user_id: int | None = None  # None when it was sent to a channel
    channel: str | None = None  # None when it was sent to a user
    message_id: str | None = None  # the messaging-API message that asked for it
    read_at: datetime | None = None

    @classmethod
    def from_event(cls, event: Any) -> Notification | None:
        """The notification a publication's `data` announces; None for any other data."""
        if not isinstance(event, dict) or event.get("kind") != "notification":
            return None
        read_at = event.get("read_at")
        return cls(
            id=event["id"],
            title=event["title"],
            body=event["body"],
            level=event["level"],
            data=event.get("data"),
            created_at=datetime.fromisoformat(event["created_at"]),
            user_id=event.get("user_id"),
            channel=event.get("channel"),
            message_id=event.get("message_id"),
            read_at=datetime.fromisoformat(read_at) if read_at else None,
        )

    @classmethod
    def from_publication(cls, publication: Any) -> Notification | None:
        """From a publication: a `WSClient.messages()` frame, or `SSEEvent.json()` of a
        `publication` event. None when it announces no notification."""
        return cls.from_event(publication.get("data")) if isinstance(publication, dict) else None
