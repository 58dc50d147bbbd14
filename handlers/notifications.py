"""GET /users/me/notifications and POST /users/me/notifications/{id}/read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from handlers.http import json_response
from handlers.openapi import endpoint
from server.kernel.errors import NotFound
from server.kernel.principal import USER_READ, USER_WRITE, Principal
from storage import notifications
from storage.db import db_key, transaction


class NotificationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(20, ge=1, le=100)
    unread: bool = Field(False, description="Only notifications not yet read.")


class NotificationPath(BaseModel):
    notification_id: int = Field(ge=1, le=2**63 - 1)


class Notification(BaseModel):
    id: int
    title: str
    body: str
    level: str
    data: Any = None
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[Notification]
    total: int
    page: int
    per_page: int


@endpoint(
    summary="Your notifications",
    tags=["users"],
    query=NotificationQuery,
    auth=USER_READ,
    response=NotificationPage,
)
async def list_mine(
    request: web.Request, query: NotificationQuery, principal: Principal
) -> web.Response:
    """Newest first; `unread=true` for those not yet read."""
    async with transaction(request.app[db_key]) as conn:
        rows, total = await notifications.for_user(
            conn,
            principal.user_id,
            unread_only=query.unread,
            limit=query.per_page,
            offset=(query.page - 1) * query.per_page,
        )
    items = [Notification.model_validate(row) for row in rows]
    return json_response(
        NotificationPage(items=items, total=total, page=query.page, per_page=query.per_page)
    )


@endpoint(
    summary="Mark a notification read",
    tags=["users"],
    path=NotificationPath,
    auth=USER_WRITE,
    response=Notification,
    errors=[404],
)
async def mark_read(
    request: web.Request, path: NotificationPath, principal: Principal
) -> web.Response:
    async with transaction(request.app[db_key]) as conn:
        row = await notifications.mark_read(conn, path.notification_id, principal.user_id)
    if row is None:
        raise NotFound("no notification of yours has this id")
    return json_response(Notification.model_validate(row))
