"""Files on a private channel and a removal while they arrive: a member removed during an
upload (WebSocket, resumed or not, or HTTP) keeps the file but cannot announce it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

from server.hub.binary import chunk_frame
from storage.db import connect as db_connect
from storage.db import db_key
from tests.integration.test_private_channels import add_member, create_channel, members_url
from tests.integration.test_realtime_channels import publish, subscribe
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account
from tests.support.uploads import form, post

DATA = b"y" * 100
BIG = b"z" * 300_000


async def begin(ws: Any, channel: str) -> str:
    await ws.send_json(
        {"type": "file.begin", "name": "late.bin", "size": len(DATA), "channel": channel, "id": 1}
    )
    return str((await next_of(ws, "file.ready"))["upload_id"])


async def remove(client: Any, owner: Account, channel: str, member: Account) -> None:
    response = await client.delete(members_url(channel, member.id), headers=owner.headers)
    assert response.status == 204


async def uploading(client: Any, account: Account) -> bool:
    async with db_connect(client.app[db_key]) as conn:
        count = await conn.fetch_value(
            "SELECT count(*) FROM files WHERE owner_id = %(id)s AND status = 'uploading'",
            {"id": account.id},
        )
    return bool(count)


async def assert_next_publication_is(ws: Any, channel: str, data: Any) -> None:
    """Nothing was announced before `data` (published now by `ws`'s own user)."""
    await publish(ws, channel, data)
    assert (await next_of(ws, "publication"))["data"] == data


async def test_an_upload_finished_after_a_removal_is_not_announced(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = await create_channel(client, alice)
    await add_member(client, alice, channel, bob.id)
    owner = await connect(client, alice)
    await subscribe(owner, channel)
    member = await connect(client, bob)
    await subscribe(member, channel)
    upload_id = await begin(member, channel)
    await remove(client, alice, channel, bob)
    await next_of(member, "unsubscribed")
    await member.send_bytes(chunk_frame(uuid.UUID(upload_id), 0, DATA))
    await next_of(member, "file.ack")
    await member.send_json({"type": "file.end", "upload_id": upload_id, "id": 3})
    done = await next_of(member, "file.done")
    error = await next_of(member, "error")
    assert (error["code"], error["ref"]) == ("forbidden", 3)
    assert "stored but not announced" in error["message"]
    mine = await client.get(done["url"], headers=bob.headers)  # the file is bob's still
    assert mine.status == 200 and await mine.read() == DATA
    # ...and his alone: the channel's members may not read what was never announced there
    theirs = await client.get(done["url"], headers=alice.headers)
    assert theirs.status in (403, 404), await theirs.text()
    await assert_next_publication_is(owner, channel, {"after": "removal"})
    for ws in (owner, member):
        await ws.close()


async def test_a_removed_member_cannot_resume_an_upload_to_the_channel(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = await create_channel(client, alice)
    await add_member(client, alice, channel, bob.id)
    owner = await connect(client, alice)
    await subscribe(owner, channel)
    member = await connect(client, bob)
    await subscribe(member, channel)
    upload_id = await begin(member, channel)
    await remove(client, alice, channel, bob)
    await next_of(member, "unsubscribed")
    await member.close()
    again = await connect(client, bob)
    await again.send_json({"type": "file.begin", "upload_id": upload_id, "id": 2})
    error = await next_of(again, "error")
    assert (error["code"], error["ref"]) == ("forbidden", 2)
    # once a member again, the same upload resumes (it was kept)
    await add_member(client, alice, channel, bob.id)
    await again.send_json({"type": "file.begin", "upload_id": upload_id, "id": 4})
    assert (await next_of(again, "file.ready"))["upload_id"] == upload_id
    await assert_next_publication_is(owner, channel, {"nothing": "announced"})
    for ws in (owner, again):
        await ws.close()


async def test_an_http_upload_whose_sender_is_removed_meanwhile_is_not_announced(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = await create_channel(client, alice)
    await add_member(client, alice, channel, bob.id)
    owner = await connect(client, alice)
    await subscribe(owner, channel)
    removed = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield BIG[: len(BIG) // 2]  # large enough to leave the client's buffer at once
        await removed.wait()
        yield BIG[len(BIG) // 2 :]

    sending = asyncio.ensure_future(post(client, bob, form(body(), channel=channel)))
    async with asyncio.timeout(5):  # the channel part was checked, the file part begun
        while not await uploading(client, bob):  # noqa: ASYNC110 (a row, not an event)
            await asyncio.sleep(0.01)
    await remove(client, alice, channel, bob)
    removed.set()
    response = await sending
    assert response.status == 403, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == "forbidden" and "stored but not announced" in error["message"]
    mine = await client.get(error["details"]["url"], headers=bob.headers)
    assert mine.status == 200 and await mine.read() == BIG
    theirs = await client.get(error["details"]["url"], headers=alice.headers)
    assert theirs.status in (403, 404), await theirs.text()
    await assert_next_publication_is(owner, channel, {"after": "removal"})
    await owner.close()
