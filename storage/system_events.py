"""System events, stored once per message."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.dialects.postgresql import insert

from storage.db import Connection, Row
from storage.tables import system_events


async def record(
    conn: Connection, *, message_id: uuid.UUID, event_name: str, event_data: Any, severity: str
) -> Row | None:
    return await conn.fetch_one(
        insert(system_events)
        .values(
            message_id=message_id, event_name=event_name, event_data=event_data, severity=severity
        )
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(system_events)
    )
