"""Files: GET /realtime/files/{id} (streamed, with Range) and POST /realtime/binary/upload
(multipart, streamed to disk). WebSocket uploads are in server/hub/file_messages.py."""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import datetime
from urllib.parse import quote

import orjson
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel
from redis.exceptions import RedisError

from handlers.http import JSON, json_response
from handlers.openapi import endpoint
from handlers.openapi_rules import SETTINGS_MARK
from handlers.realtime_rest import CHANNEL_RULE
from server.auth.authenticator import authenticator_key
from server.files.upload import Upload, safe_mime
from server.files.uploads import uploads_key
from server.hub.channels import MAX_CHANNEL_LENGTH
from server.hub.hub import hub_key
from server.kernel.errors import (
    AppError,
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from server.kernel.principal import Access, Principal
from server.kernel.realtime_errors import ProtocolError, UploadError
from server.kernel.settings import settings_key
from storage import files
from storage.db import db_key, transaction

log = logging.getLogger(__name__)

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


@endpoint(
    summary="Download a file",
    tags=["realtime"],
    auth=READ,
    validates=False,
    parameters=[
        {
            "name": "ticket",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "A single-use ticket (POST /auth/ws-ticket) instead of a header, "
            "for browsers.",
        },
        {
            "name": "X-Subscription-Token",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "A subscription token for the channel the file was announced on "
            "(a channel whose namespace takes tokens): it lets its holder read the file.",
        },
        {
            "name": "Range",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "A byte range (RFC 9110): answered with 206.",
        },
    ],
    responses={
        200: {"description": "The file's bytes", "content": {"*/*": {}}},
        206: {"description": "The requested range", "content": {"*/*": {}}},
        304: {"description": "Not modified (If-None-Match)"},
        404: {
            "description": "No such file, or not yours to read (the same answer)",
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
        },
        416: {"description": "The range is not satisfiable"},
    },
)
async def download(request: web.Request) -> web.StreamResponse:
    """The file's bytes, streamed from disk; Range requests work (206). Allowed: the owner,
    admins, and whoever may subscribe to the channel the file was announced on (with a
    subscription token for it in `X-Subscription-Token`, where its namespace takes them).
    Browsers may authenticate with `?ticket=` (POST /auth/ws-ticket)."""
    principal = await request.app[authenticator_key].authenticate_connection(request, READ)
    try:
        file_id = uuid.UUID(request.match_info["file_id"])
    except ValueError:
        raise NotFound("no such file") from None
    async with transaction(request.app[db_key]) as conn:
        row = await files.get(conn, file_id)
    hub = request.app[hub_key]
    readable = False  # through its channel: those who may subscribe there (members, too)
    if row is not None and row["channel"]:
        token = request.headers.get("X-Subscription-Token") or None
        for grant in (None, token) if token else (None,):  # the rules, then the token
            try:
                channel = hub.parse_channel(row["channel"])
                await hub.subscriptions.check_subscribe(principal, channel, grant)
                readable = True
                break
            except ProtocolError:
                pass

    def may_subscribe(name: str) -> bool:
        return readable

    uploads = request.app[uploads_key]
    if (
        row is None
        or row["status"] != "complete"
        or not uploads.can_read(principal, row, may_subscribe)
    ):
        raise NotFound("no such file")
    return web.FileResponse(
        uploads.path(file_id),
        headers={
            "Content-Type": safe_mime(row["mime"]),
            "Content-Disposition": content_disposition(row["name"]),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            # aiohttp sets the ETag (from mtime and size) and answers If-None-Match/If-Range
            # with it; the content hash travels as RFC 9530's Repr-Digest.
            "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(row['sha256'])).decode()}:",
        },
    )


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name in RFC 5987 form."""
    cleaned = "".join(ch for ch in name if ch.isprintable())
    fallback = (
        "".join(ch if " " <= ch <= "~" and ch not in '"\\%;' else "_" for ch in cleaned).strip()
        or "file"
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(cleaned, safe='')}"


UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "additionalProperties": False,  # other parts are skipped: send none
                "properties": {
                    "channel": {
                        "type": "string",
                        "maxLength": MAX_CHANNEL_LENGTH,
                        "description": "Announce the file on this channel (you must be "
                        "allowed to publish there: 403 otherwise). Send it before `file`.",
                        SETTINGS_MARK: CHANNEL_RULE.name,
                    },
                    "file": {
                        "type": "string",
                        "contentMediaType": "application/octet-stream",
                        "description": "The file, at most UPLOAD_MAX_SIZE bytes (413 beyond, "
                        "or beyond your quota).",
                    },
                },
            },
        }
    },
}


@endpoint(
    summary="Upload a file (multipart)",
    tags=["realtime"],
    auth=WRITE,
    response=FileOut,
    status=201,
    errors=[400, 403, 413, 415, 503],
    request_body=UPLOAD_BODY,
)
async def upload(request: web.Request, principal: Principal) -> web.Response:
    """multipart/form-data with an optional `channel` field first, then the `file` part.
    Streamed to disk as it arrives; announced on the channel when given."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("send multipart/form-data with a `file` part")
    settings = request.app[settings_key]
    hub = request.app[hub_key]
    uploads = request.app[uploads_key]
    try:
        reader = await request.multipart()
    except ValueError as error:  # no or a bad boundary
        raise BadRequest(f"not a usable multipart body: {error}", code="bad_multipart") from None
    channel: str | None = None
    received: Upload | None = None
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):  # a nested multipart: not ours
                raise BadRequest("nested multipart bodies are not accepted", code="bad_multipart")
            if part.name == "channel" and received is None:
                channel = await _short_text(part, MAX_CHANNEL_LENGTH)
                try:
                    parsed = hub.parse_channel(channel)
                    await hub.subscriptions.check_rest_publish(principal, parsed)
                except ProtocolError as error:
                    # Not allowed to publish there is a permission (403), not bad input.
                    refusal = Forbidden if error.code == "forbidden" else BadRequest
                    raise refusal(error.message, code=error.code) from None
            elif part.name == "file" and received is None:
                received = await uploads.receive_part(
                    principal,
                    part,
                    name=part.filename or "file",
                    mime=safe_mime(part.headers.get("Content-Type")),
                    channel=channel,
                    limit=min(
                        settings.UPLOAD_MAX_SIZE,
                        request.content_length or settings.UPLOAD_MAX_SIZE,
                    ),
                )
            else:
                await part.release()
        if received is None:
            raise BadRequest("no `file` part in the form", code="no_file")
        # the body ended well: only now is the file complete
        row = await uploads.finish(received)
    except BaseException as error:
        if received is not None:  # no resuming over HTTP: whatever went wrong, it goes
            await uploads.abort(received)
        if isinstance(error, UploadError):
            status: type[AppError] = BadRequest
            if error.code in ("too_large", "quota_exceeded"):
                status = PayloadTooLarge
            elif error.code == "unavailable":
                status = ServiceUnavailable
            raise status(error.message, code=error.code, details=error.details) from None
        if isinstance(error, (HttpProcessingError, ValueError)):  # bad headers or boundaries
            raise BadRequest(f"malformed multipart body: {error}", code="bad_multipart") from None
        raise
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
        try:
            # Again, now that the body is in: a member removed while it arrived must not
            # publish through it. The file is stored all the same (it is the caller's).
            await hub.subscriptions.check_rest_publish(principal, hub.parse_channel(channel))
        except ProtocolError as error:
            await uploads.unannounce(row["id"])  # readable by its owner (and admins) only
            raise Forbidden(
                f"the file is stored but not announced: {error.message}",
                code=error.code,
                details={"file_id": str(row["id"]), "url": out.url},
            ) from None
        try:
            await hub.publish(
                channel,
                orjson.dumps({"kind": "file", **out.model_dump(mode="json")}),
                {"user_id": principal.user_id, "client_id": None},
            )
        except (RedisError, OSError, TimeoutError) as error:  # the file is stored all the same
            log.warning("file %s stored but not announced on %s: %s", row["id"], channel, error)
    return json_response(out, status=201)


async def _short_text(part: BodyPartReader, limit: int) -> str:
    """A small text field, read without ever holding more than `limit` + a chunk."""
    data = bytearray()
    while chunk := await part.read_chunk(1024):
        data.extend(chunk)
        if len(data) > limit:
            raise BadRequest(
                f"the `{part.name}` field is longer than {limit} bytes", code="bad_channel"
            )
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise BadRequest(f"the `{part.name}` field is not UTF-8", code="bad_channel") from None
