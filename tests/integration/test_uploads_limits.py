"""Limits on unfinished uploads: how many one user may have, resuming with only the upload
id, and the sweeper that discards abandoned ones (freeing their quota)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from server.files.uploads import uploads_key
from storage.db import transaction
from tests.conftest import make_settings
from tests.integration.test_realtime_ws import connect
from tests.support.accounts import Account, create_account, log_in


@pytest.fixture
def app(settings: Any, tmp_path: Path) -> Any:
    return create_app(
        make_settings(
            POSTGRES_DB=settings.POSTGRES_DB, UPLOAD_DIR=str(tmp_path), UPLOAD_MAX_ACTIVE=2
        )
    )


@pytest.fixture
async def carol(client: Any, db: Any, auth_service: Any) -> Account:
    """A user of her own, so other tests' uploads do not count against her limits."""
    return await log_in(client, await create_account(db, auth_service))


async def begin(ws: Any, name: str, size: int = 10) -> dict[str, Any]:
    await ws.send_json({"type": "file.begin", "name": name, "size": size, "id": name})
    return await _reply(ws)


async def _reply(ws: Any) -> dict[str, Any]:
    while True:
        frame = await ws.receive_json(timeout=5)
        if frame["type"] in ("file.ready", "error"):
            return dict(frame)


async def test_unfinished_uploads_are_capped_per_user(client: Any, carol: Account) -> None:
    ws = await connect(client, carol)
    assert (await begin(ws, "one"))["type"] == "file.ready"
    assert (await begin(ws, "two"))["type"] == "file.ready"
    third = await begin(ws, "three")
    assert third["type"] == "error"
    assert third["code"] == "too_many_uploads"
    await ws.close()


async def test_resume_needs_only_the_upload_id(client: Any, carol: Account) -> None:
    ws = await connect(client, carol)
    ready = await begin(ws, "resume-me", size=100)
    await ws.close()
    again = await connect(client, carol)
    await again.send_json({"type": "file.begin", "upload_id": ready["upload_id"]})
    resumed = await _reply(again)
    assert resumed["type"] == "file.ready", resumed
    assert resumed["upload_id"] == ready["upload_id"]
    assert resumed["size"] == 100
    await again.send_json({"type": "file.begin", "name": "x"})
    missing = await _reply(again)
    assert missing["code"] == "invalid"
    await again.close()


async def test_sweeper_discards_abandoned_uploads(
    client: Any, carol: Account, db: Any, app: Any
) -> None:
    ws = await connect(client, carol)
    ready = await begin(ws, "abandoned", size=1000)
    await ws.close()
    file_id = uuid.UUID(ready["upload_id"])
    uploads = app[uploads_key]
    partial = uploads.path(file_id, partial=True)
    assert partial.exists()
    async with transaction(db) as conn:
        await conn.execute(
            "UPDATE files SET created_at = now() - interval '2 days' WHERE id = %(id)s",
            {"id": file_id},
        )
    assert await uploads.sweep() >= 1
    async with transaction(db) as conn:
        row = await conn.fetch_one("SELECT status FROM files WHERE id = %(id)s", {"id": file_id})
    assert row is not None
    assert row["status"] == "aborted"
    assert not partial.exists()
