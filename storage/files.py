"""Uploaded files: metadata only (the bytes are on disk, see server/files/uploads.py)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from storage.db import Connection, Row
from storage.tables import files


async def create(
    conn: Connection,
    *,
    file_id: uuid.UUID,
    owner_id: int,
    name: str,
    mime: str,
    size: int,
    expected_sha256: str | None,
    channel: str | None,
) -> Row:
    row = await conn.fetch_one(
        sa.insert(files)
        .values(
            id=file_id,
            owner_id=owner_id,
            name=name,
            mime=mime,
            size=size,
            expected_sha256=expected_sha256,
            channel=channel,
        )
        .returning(files)
    )
    assert row is not None
    return row


async def unannounce(conn: Connection, file_id: uuid.UUID) -> None:
    """The file belongs to no channel any more (its announcement was refused): only its
    owner and admins may read it."""
    await conn.execute(sa.update(files).where(files.c.id == file_id).values(channel=None))


async def get(conn: Connection, file_id: uuid.UUID) -> Row | None:
    return await conn.fetch_one(sa.select(files).where(files.c.id == file_id))


async def lock_owner(conn: Connection, owner_id: int) -> None:
    """Until the transaction ends, other transactions calling this for the same owner wait:
    checking the quota and reserving space is then one step."""
    await conn.execute(
        sa.select(
            sa.func.pg_advisory_xact_lock(
                sa.func.hashtextextended(sa.literal("files.quota:") + sa.cast(owner_id, sa.Text), 0)
            )
        )
    )


async def used_bytes(conn: Connection, owner_id: int) -> int:
    """Bytes the user's files take or will take (uploads in progress count in full)."""
    total = await conn.fetch_value(
        sa.select(sa.func.coalesce(sa.func.sum(files.c.size), 0)).where(
            files.c.owner_id == owner_id, files.c.status != "aborted"
        )
    )
    return int(total)


async def progress(conn: Connection, file_id: uuid.UUID, received: int) -> None:
    await conn.execute(
        sa.update(files)
        .where(files.c.id == file_id, files.c.status == "uploading")
        .values(received=received)
    )


async def set_size(conn: Connection, file_id: uuid.UUID, size: int) -> None:
    """For uploads whose size was unknown until the end (HTTP multipart)."""
    await conn.execute(sa.update(files).where(files.c.id == file_id).values(size=size))


async def complete(conn: Connection, file_id: uuid.UUID, sha256: str) -> Row | None:
    return await conn.fetch_one(
        sa.update(files)
        .where(files.c.id == file_id, files.c.status == "uploading")
        .values(status="complete", received=files.c.size, sha256=sha256, completed_at=sa.func.now())
        .returning(files)
    )


async def abort(conn: Connection, file_id: uuid.UUID) -> None:
    await conn.execute(
        sa.update(files)
        .where(files.c.id == file_id, files.c.status == "uploading")
        .values(status="aborted")
    )


async def active_count(conn: Connection, owner_id: int) -> int:
    return int(
        await conn.fetch_value(
            sa.select(sa.func.count())
            .select_from(files)
            .where(files.c.owner_id == owner_id, files.c.status == "uploading")
        )
    )


async def stale_uploads(
    conn: Connection, older_than_seconds: int, limit: int = 500
) -> list[uuid.UUID]:
    """Unfinished uploads started longer ago than that (abandoned, most likely)."""
    rows = await conn.fetch_all(
        sa.select(files.c.id)
        .where(
            files.c.status == "uploading",
            files.c.created_at
            < sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds),
        )
        .limit(limit)
    )
    return [row["id"] for row in rows]
