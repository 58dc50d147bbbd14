"""/realtime/webrtc/rooms: create (validated), list with participant counts, get, delete
(owner or admin), and rooms limited to some users (invisible and closed to the others)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server.kernel.settings import Settings
from tests.support.accounts import Account
from tests.support.rtc_media import Signaling, create_room, rtc_app
from tests.support.waiting import eventually

ROOMS = "/realtime/webrtc/rooms"


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> web.Application:
    return rtc_app(settings, tmp_path / "uploads")


async def listed(client: Any, account: Account) -> dict[str, dict[str, Any]]:
    response = await client.get(ROOMS, headers=account.headers)
    assert response.status == 200, await response.text()
    return {room["id"]: room for room in await response.json()}


async def test_create_returns_the_room_with_defaults(client: Any, alice: Account) -> None:
    room = await create_room(client, alice, name="standup")
    assert uuid.UUID(room["id"])
    assert room["name"] == "standup"
    assert room["owner_id"] == alice.id
    assert room["max_participants"] == 8
    assert room["media"] is True and room["record"] is False
    assert room["allowed_user_ids"] is None
    assert room["participants"] == 0
    assert room["created_at"]
    custom = await create_room(
        client, alice, max_participants=2, media=False, record=True, allowed_user_ids=[1, 2]
    )
    assert (custom["max_participants"], custom["media"], custom["record"]) == (2, False, True)
    assert custom["allowed_user_ids"] == [1, 2]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "r", "max_participants": 0},
        {"name": "r", "max_participants": 1001},
        {"name": "r", "colour": "blue"},
        {"name": ""},
        {"max_participants": 2},
        {"name": "r", "media": "sometimes"},
    ],
    ids=["zero-participants", "too-many", "unknown-field", "empty-name", "no-name", "bad-bool"],
)
async def test_create_validates_the_body(client: Any, alice: Account, body: Any) -> None:
    response = await client.post(ROOMS, json=body, headers=alice.headers)
    assert response.status == 422, await response.text()
    assert (await response.json())["error"]


async def test_rooms_need_credentials(client: Any, alice: Account) -> None:
    room = await create_room(client, alice)
    assert (await client.post(ROOMS, json={"name": "x"})).status == 401
    assert (await client.get(ROOMS)).status == 401
    assert (await client.get(f"{ROOMS}/{room['id']}")).status == 401
    assert (await client.delete(f"{ROOMS}/{room['id']}")).status == 401


async def test_list_counts_participants_as_they_join_and_leave(
    client: Any, alice: Account, bob: Account
) -> None:
    room = await create_room(client, alice)
    assert (await listed(client, bob))[room["id"]]["participants"] == 0
    a = await Signaling.open(client, alice)
    await a.join(room["id"])
    assert (await listed(client, bob))[room["id"]]["participants"] == 1
    b = await Signaling.open(client, bob)
    await b.join(room["id"])
    assert (await listed(client, alice))[room["id"]]["participants"] == 2
    got = await client.get(f"{ROOMS}/{room['id']}", headers=bob.headers)
    assert got.status == 200
    assert (await got.json())["participants"] == 2

    await b.request({"type": "leave"}, "left")
    assert (await listed(client, alice))[room["id"]]["participants"] == 1
    await a.close()

    async def empty() -> bool:
        return (await listed(client, alice))[room["id"]]["participants"] == 0

    await eventually(empty, timeout=5)
    await b.close()


async def test_get_a_room(client: Any, alice: Account, bob: Account) -> None:
    room = await create_room(client, alice, name="to look at")
    response = await client.get(f"{ROOMS}/{room['id']}", headers=bob.headers)
    assert response.status == 200
    assert await response.json() == room
    missing = await client.get(f"{ROOMS}/{uuid.uuid4()}", headers=bob.headers)
    assert missing.status == 404


async def test_only_the_owner_or_an_admin_deletes(
    client: Any, alice: Account, bob: Account, admin: Account
) -> None:
    first = await create_room(client, alice)
    second = await create_room(client, alice)
    refused = await client.delete(f"{ROOMS}/{first['id']}", headers=bob.headers)
    assert refused.status == 403
    assert (await client.get(f"{ROOMS}/{first['id']}", headers=bob.headers)).status == 200

    assert (await client.delete(f"{ROOMS}/{first['id']}", headers=alice.headers)).status == 204
    assert (await client.get(f"{ROOMS}/{first['id']}", headers=alice.headers)).status == 404
    assert first["id"] not in await listed(client, alice)
    again = await client.delete(f"{ROOMS}/{first['id']}", headers=alice.headers)
    assert again.status == 404

    assert (await client.delete(f"{ROOMS}/{second['id']}", headers=admin.headers)).status == 204
    assert (await client.get(f"{ROOMS}/{second['id']}", headers=alice.headers)).status == 404


async def test_allowed_user_ids_keep_everybody_else_out(
    client: Any, alice: Account, bob: Account, admin: Account
) -> None:
    private = await create_room(client, alice, allowed_user_ids=[])
    for_bob = await create_room(client, alice, allowed_user_ids=[bob.id])

    assert private["id"] not in await listed(client, bob)
    assert for_bob["id"] in await listed(client, bob)
    assert private["id"] in await listed(client, alice)
    assert private["id"] in await listed(client, admin)
    assert (await client.get(f"{ROOMS}/{private['id']}", headers=bob.headers)).status == 404
    assert (await client.get(f"{ROOMS}/{for_bob['id']}", headers=bob.headers)).status == 200
    # not visible, so not deletable either: 404, not 403
    assert (await client.delete(f"{ROOMS}/{private['id']}", headers=bob.headers)).status == 404

    b = await Signaling.open(client, bob)
    refused = await b.request({"type": "join", "room": private["id"], "id": "j"}, "joined")
    assert refused["type"] == "error" and refused["code"] == "room_forbidden", refused
    assert refused["ref"] == "j"
    await b.join(for_bob["id"])
    a = await Signaling.open(client, alice)
    await a.join(private["id"])  # the owner always may
    boss = await Signaling.open(client, admin)
    await boss.join(private["id"])  # and admins
    for signaling in (a, b, boss):
        await signaling.close()
