"""The file transfer: `file.begin` (new or resumed), chunk frames, `file.end`, `file.abort`.
The client's transfers in progress are in transfers.py.

Announcing a file on a channel is publishing there: checked at `file.begin`, again when a
transfer is resumed, and again at `file.end` (a member removed from a private channel
meanwhile must not publish through an upload begun before). A file refused at the end is
stored all the same (it is its owner's), but not announced."""

from __future__ import annotations

import orjson
from redis.exceptions import RedisError

from server.hub import binary
from server.hub.handler import Session
from server.hub.messages import FileAbort, FileBegin, FileEnd
from server.hub.protocol import encode, error_frame
from server.kernel.realtime_errors import ProtocolError, UploadError


async def may_announce(session: Session, name: str, ref: object) -> None:
    """May the client still publish on `name`? A subscription proves it (as for a
    publish); without one (a resumed upload on a new connection, a removed member) the
    check is the HTTP upload's: a private channel's membership is looked up."""
    hub = session.hub
    channel = hub.parse_channel(name, ref)
    try:
        hub.subscriptions.check_publish(session.connection, channel, ref)
    except ProtocolError:
        await hub.subscriptions.check_rest_publish(session.connection.principal, channel, ref)


async def on_file_begin(session: Session, message: FileBegin) -> None:
    ref = message.id if message.id is not None else "file.begin"
    transfers = session.transfers
    principal = session.connection.principal
    if message.upload_id is not None:
        upload = await transfers.uploads.resume(principal, message.upload_id)
        if upload.channel is not None:
            try:
                await may_announce(session, upload.channel, ref)
            except Exception:  # refused, or Redis is down: resumable once allowed again
                await transfers.uploads.pause(upload)
                raise
    else:
        if message.channel is not None:
            session.publishing.may_publish(message.channel, ref)
        assert message.name is not None  # the model requires both for a new upload
        assert message.size is not None
        upload = await transfers.uploads.begin(
            principal,
            name=message.name,
            mime=message.mime,
            size=message.size,
            sha256=message.sha256,
            channel=message.channel,
        )
    transfers.add(upload)
    session.reply(
        {
            "type": "file.ready",
            "upload_id": str(upload.file_id),
            "offset": upload.received,
            "size": upload.size,
            "chunk_size": session.settings.UPLOAD_CHUNK_SIZE,
            "window": session.settings.UPLOAD_WINDOW,
        },
        message,
    )


async def on_chunk(session: Session, frame: binary.Chunk) -> None:
    transfers = session.transfers
    upload = transfers.get(str(frame.upload_id))
    limit = session.settings.UPLOAD_CHUNK_SIZE
    if len(frame.data) > limit:
        raise UploadError("chunk_too_large", f"chunks are at most {limit} bytes")
    offset = await transfers.uploads.write(upload, frame.offset, frame.data)
    session.connection.send(
        encode({"type": "file.ack", "upload_id": str(upload.file_id), "offset": offset})
    )


async def on_file_end(session: Session, message: FileEnd) -> None:
    transfers = session.transfers
    upload = transfers.get(message.upload_id)
    try:
        row = await transfers.uploads.finish(upload)
    finally:
        if upload.closed:  # done, discarded (sha256_mismatch) or taken over
            transfers.discard(upload)
    done = {
        "file_id": str(row["id"]),
        "name": row["name"],
        "mime": row["mime"],
        "size": row["size"],
        "sha256": row["sha256"],
        "url": f"/realtime/files/{row['id']}",
    }
    ref = message.id if message.id is not None else "file.end"
    refusal: tuple[str, str] | None = None
    if row["channel"]:
        announcement = orjson.dumps({"kind": "file", **done})
        try:
            await may_announce(session, row["channel"], ref)
            await session.hub.publish(row["channel"], announcement, session.connection.sender)
        except ProtocolError as error:
            refusal = (error.code, f"the file is stored but not announced: {error.message}")
            await transfers.uploads.unannounce(row["id"])
        except (RedisError, OSError, TimeoutError):
            refusal = (
                "unavailable",
                f"the file is stored but could not be announced on {row['channel']}",
            )
    session.reply({"type": "file.done", **done}, message)
    if refusal is not None:  # the file is stored all the same: say so after file.done
        session.connection.send(error_frame(*refusal, ref=ref))


async def on_file_abort(session: Session, message: FileAbort) -> None:
    transfers = session.transfers
    upload = transfers.get(message.upload_id)
    await transfers.uploads.abort(upload)
    transfers.discard(upload)
    session.reply({"type": "file.aborted", "upload_id": str(upload.file_id)}, message)
