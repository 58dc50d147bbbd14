"""The shapes of the admin API (/admin/api/...): what the dashboard reads and sends."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from server.auth.schemas import Input
from workers.broker.kinds import CONCERNS

Queue = Literal["tasks", "notifications.user", "notifications.admin", "orders", "events.system"]
if set(get_args(Queue)) != set(CONCERNS):  # a new concern must be named here too
    raise RuntimeError(f"handlers/admin_models.py Queue does not list {CONCERNS}")


class NodeOut(BaseModel):
    """One server node's latest report (server/hub/stats.py), every STATS_INTERVAL seconds."""

    model_config = ConfigDict(extra="allow")
    node: str
    at: float
    connections: int
    by_transport: dict[str, int]
    users: int
    channels: int


class ChannelOut(BaseModel):
    name: str
    subscribers: int = Field(description="Connections of this node subscribed to it.")


class ConnectedUserOut(BaseModel):
    user_id: int
    connections: int
    transports: dict[str, int]


class RoomSummary(BaseModel):
    id: uuid.UUID
    name: str
    owner_id: int
    participants: int
    created_at: datetime


class ErrorRecordOut(BaseModel):
    at: float
    level: str
    logger: str
    message: str
    exception: str | None


class ThisNodeOut(BaseModel):
    """What only the node that answered knows in detail (the others report counts)."""

    node: str
    channels: list[ChannelOut] = Field(description="The busiest 50, most subscribers first.")
    users: list[ConnectedUserOut] = Field(description="The 50 with most connections.")
    uploads_in_progress: int
    peers: list[dict[str, Any]] = Field(description="This node's server WebRTC peers.")
    relayed: int = Field(
        description="Outbox messages this node's relay has published since it started (a "
        "counter: the dashboard shows its rate)."
    )
    recent_errors: list[ErrorRecordOut] = Field(
        description="This node's last 50 log records of level ERROR or above, newest first."
    )


class OverviewOut(BaseModel):
    nodes: list[NodeOut]
    this_node: ThisNodeOut
    rooms: list[RoomSummary] = Field(description="WebRTC rooms (empty when WebRTC is off).")
    messaging: dict[str, Any] = Field(
        description="As GET /messaging/health: status, broker, queues (ready, consumers, "
        "dead_letters per queue), outbox (backlog, oldest_age_seconds), workers (heartbeats)."
    )


class DeadLetterQuery(Input):
    queue: Queue | None = Field(None, description="One queue; none: every queue.")
    limit: int = Field(20, ge=1, le=200, description="Messages shown per queue.")


class DeadLetterOut(BaseModel):
    message_id: str | None
    type: str | None
    error: str | None
    attempts: int | None
    dead_at: Any = None
    size: int


class DeadQueueOut(BaseModel):
    count: int
    messages: list[DeadLetterOut]


class DeadLettersOut(BaseModel):
    queues: dict[str, DeadQueueOut]


class RequeueIn(Input):
    queue: Queue | None = Field(None, description="One queue; none: every queue.")
    message_id: str | None = Field(
        None, min_length=1, max_length=200, description="One message; none: all of them."
    )


class PurgeIn(Input):
    queue: Queue | None = Field(None, description="One queue; none: every queue.")


class CountOut(BaseModel):
    count: int = Field(description="How many messages were moved or deleted.")


class RoomPath(Input):
    room_id: uuid.UUID
