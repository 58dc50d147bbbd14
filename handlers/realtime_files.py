"""Files: GET /realtime/files/{id} (streamed, with Range) and POST /realtime/binary/upload
(multipart, streamed to disk). WebSocket uploads are in handlers/realtime_session.py."""

from __future__ import annotations

import uuid
from datetime import datetime

import orjson
from aiohttp import BodyPartReader, web
from pydantic import BaseModel

from server import keys
from server.auth.principal import Access, Principal
from server.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from server.http import json_response
from server.hub.channels import ChannelError
from server.hub.protocol import ProtocolError
from server.hub.uploads import UploadError
from server.openapi import endpoint
from storage import files
from storage.db import transaction

READ = Access(scope="read")
WRITE = Access(scope="write")


class FileOut(BaseModel):
    file_id: uuid.UUID
    name: str
    mime: str
    size: int
    sha256: str
    url: str
    channel: str | None
    created_at: datetime


async def download(request: web.Request) -> web.StreamResponse:
    """The file's bytes, streamed from disk; Range requests work (206). Allowed: the owner,
    admins, and whoever may subscribe to the channel the file was announced on.
    Browsers may authenticate with `?ticket=` (POST /auth/ws-ticket)."""
    principal = await request.app[keys.auth].authenticate_connection(request, READ)
    try:
        file_id = uuid.UUID(request.match_info["file_id"])
    except ValueError:
        raise NotFound("no such file") from None
    async with transaction(request.app[keys.db]) as conn:
        row = await files.get(conn, file_id)
    hub = request.app[keys.hub]

    def may_subscribe(name: str) -> bool:
        try:
            hub.channels.check_subscribe(principal, hub.channels.parse(name))
        except ChannelError:
            return False
        return True

    uploads = request.app[keys.uploads]
    if (
        row is None
        or row["status"] != "complete"
        or not uploads.can_read(principal, row, may_subscribe)
    ):
        raise NotFound("no such file")
    name = row["name"].replace('"', "")
    return web.FileResponse(
        uploads.path(file_id),
        headers={
            "Content-Type": row["mime"],
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "ETag": f'"{row["sha256"]}"',
        },
    )


@endpoint(
    summary="Upload a file (multipart)",
    tags=["realtime"],
    auth=WRITE,
    response=FileOut,
    status=201,
    errors=[400, 413, 415],
)
async def upload(request: web.Request, principal: Principal) -> web.Response:
    """multipart/form-data with an optional `channel` field first, then the `file` part.
    Streamed to disk as it arrives; announced on the channel when given."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("send multipart/form-data with a `file` part")
    settings = request.app[keys.settings]
    hub = request.app[keys.hub]
    uploads = request.app[keys.uploads]
    reader = await request.multipart()
    channel: str | None = None
    row = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):  # a nested multipart: not ours
            raise BadRequest("nested multipart bodies are not accepted", code="bad_multipart")
        if part.name == "channel" and row is None:
            channel = (await part.text())[:161]
            try:
                parsed = hub.parse_channel(channel)
                hub.check(hub.channels.check_publish, principal, parsed)
            except ProtocolError as error:
                raise BadRequest(error.message, code=error.code) from None
        elif part.name == "file" and row is None:
            limit = min(
                settings.UPLOAD_MAX_SIZE, request.content_length or settings.UPLOAD_MAX_SIZE
            )
            try:
                row = await uploads.store_stream(
                    principal,
                    part,
                    name=part.filename or "file",
                    mime=part.headers.get("Content-Type", "application/octet-stream")[:255],
                    channel=channel,
                    limit=limit,
                )
            except UploadError as error:
                status = (
                    PayloadTooLarge if error.code in ("too_large", "quota_exceeded") else BadRequest
                )
                raise status(error.message, code=error.code, details=error.details) from None
        else:
            await part.release()
    if row is None:
        raise BadRequest("no `file` part in the form", code="no_file")
    out = FileOut(
        file_id=row["id"],
        name=row["name"],
        mime=row["mime"],
        size=row["size"],
        sha256=row["sha256"],
        url=f"/realtime/files/{row['id']}",
        channel=row["channel"],
        created_at=row["created_at"],
    )
    if channel:
        await hub.publish(
            channel,
            orjson.dumps({"kind": "file", **out.model_dump(mode="json")}),
            {"user_id": principal.user_id, "client_id": None},
        )
    return json_response(out, status=201)
