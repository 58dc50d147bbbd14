"""The admin API (/admin/api/...): the overview counts what is really connected, dead letters
are browsed, requeued and purged on a real RabbitMQ, and the actions (disconnect a user,
revoke a session, close a room) take effect and are announced on `admin:dashboard`. Plain
users get 403, strangers 401, garbage 422."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiormq
import orjson
import pytest
from pydantic import SecretStr

from server.app import create_app
from server.kernel.principal import Role
from server.kernel.settings import Settings
from tests.integration.test_realtime_channels import assert_answers_ping, subscribe
from tests.integration.test_realtime_ws import connect, next_of
from tests.integration.test_users_admin import refused
from tests.support.accounts import Account, create_account, log_in
from tests.support.frames import close_code
from workers.broker.topology import Topology

SOME_ID = "00000000-0000-4000-8000-000000000000"
ADMIN_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/admin/api/overview", None),
    ("GET", "/admin/api/dead-letters", None),
    ("GET", "/admin/api/dead-letters/messages/m1", None),
    ("POST", "/admin/api/dead-letters/requeue", {}),
    ("POST", "/admin/api/dead-letters/purge", {}),
    ("POST", "/admin/api/users/1/disconnect", None),
    ("GET", "/admin/api/users/1/sessions", None),
    ("POST", f"/admin/api/sessions/{SOME_ID}/revoke", None),
    ("DELETE", f"/admin/api/rooms/{SOME_ID}", None),
]


@pytest.fixture
async def settings(base_settings: Settings) -> AsyncIterator[Settings]:
    """Queues of this test's own (their dead letters are counted), removed afterwards."""
    own = base_settings.model_copy(
        update={"AMQP_PREFIX": f"{base_settings.AMQP_PREFIX}-admin-{uuid.uuid4().hex[:6]}"}
    )
    yield own
    connection = await aiormq.connect(own.RABBITMQ_URL.get_secret_value())
    await Topology.from_settings(own).delete(await connection.channel())
    await connection.close()


async def bury(settings: Settings, concern: str, message_id: str, error: str) -> None:
    """A dead letter, as the worker leaves one (body, x-error and x-attempts headers)."""
    topology = Topology.from_settings(settings)
    connection = await aiormq.connect(settings.RABBITMQ_URL.get_secret_value())
    try:
        channel = await connection.channel()
        await topology.declare(channel)
        await channel.basic_publish(
            orjson.dumps({"type": "user_notification", "payload": {"user_id": 1}}),
            routing_key=topology.dead_queue(concern),
            properties=aiormq.spec.Basic.Properties(
                delivery_mode=2,
                message_id=message_id,
                headers={"x-error": error, "x-attempts": 5},
            ),
        )
    finally:
        await connection.close()


async def ready_in(settings: Settings, concern: str) -> int:
    connection = await aiormq.connect(settings.RABBITMQ_URL.get_secret_value())
    try:
        channel = await connection.channel()
        declared = await channel.queue_declare(
            Topology.from_settings(settings).queue(concern), passive=True
        )
        return int(declared.message_count or 0)
    finally:
        await connection.close()


async def ok_json(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_plain_users_get_403_and_strangers_401(
    client: Any, alice: Account, method: str, path: str, body: Any
) -> None:
    response = await client.request(method, path, json=body, headers=alice.headers)
    await refused(response, 403, "insufficient_role")
    response = await client.request(method, path, json=body)
    assert response.status == 401


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/admin/api/dead-letters?limit=0", None),
        ("GET", "/admin/api/dead-letters?queue=nope", None),
        ("GET", "/admin/api/dead-letters?limit=abc", None),
        ("POST", "/admin/api/dead-letters/requeue", {"queue": "nope"}),
        ("POST", "/admin/api/dead-letters/requeue", {"message_id": ""}),
        ("POST", "/admin/api/dead-letters/requeue", {"everything": True}),
        ("POST", "/admin/api/dead-letters/purge", {"queue": 7}),
        ("POST", "/admin/api/dead-letters/purge", [1, 2]),
        ("POST", "/admin/api/users/abc/disconnect", None),
        ("POST", "/admin/api/users/0/disconnect", None),
        ("GET", "/admin/api/users/-3/sessions", None),
        ("POST", "/admin/api/sessions/not-a-uuid/revoke", None),
        ("DELETE", "/admin/api/rooms/not-a-uuid", None),
    ],
)
async def test_garbage_gets_422(
    client: Any, admin: Account, method: str, path: str, body: Any
) -> None:
    response = await client.request(method, path, json=body, headers=admin.headers)
    await refused(response, 422, "validation_error")
    assert (await client.get("/admin/api/overview", headers=admin.headers)).status == 200


async def test_the_overview_counts_live_connections_and_channels(
    client: Any, admin: Account, alice: Account
) -> None:
    ws = await connect(client, alice)
    channel = f"public:admin-{uuid.uuid4().hex[:8]}"
    await subscribe(ws, channel)
    overview = await ok_json(await client.get("/admin/api/overview", headers=admin.headers))
    here = overview["this_node"]
    [node] = [n for n in overview["nodes"] if n["node"] == here["node"]]
    assert node["connections"] >= 1 and node["by_transport"].get("ws", 0) >= 1
    assert {"name": channel, "subscribers": 1} in here["channels"]
    [mine] = [u for u in here["users"] if u["user_id"] == alice.id]
    assert mine["connections"] == 1 and mine["transports"] == {"ws": 1}
    assert set(overview["messaging"]["queues"]) >= {"tasks", "notifications.user"}
    assert "backlog" in overview["messaging"]["outbox"]
    assert isinstance(overview["messaging"]["workers"], list)
    await ws.close()


async def test_dead_letters_are_listed_shown_requeued_and_purged(
    client: Any, admin: Account, settings: Settings
) -> None:
    first, second = f"m-{uuid.uuid4().hex}", f"m-{uuid.uuid4().hex}"
    await bury(settings, "notifications.user", first, "the downstream service is down")
    await bury(settings, "notifications.user", second, "still down")
    await bury(settings, "orders", f"m-{uuid.uuid4().hex}", "bad order")

    listing = await ok_json(
        await client.get("/admin/api/dead-letters?queue=notifications.user", headers=admin.headers)
    )
    queue = listing["queues"]["notifications.user"]
    assert queue["count"] == 2 and list(listing["queues"]) == ["notifications.user"]
    [shown] = [m for m in queue["messages"] if m["message_id"] == first]
    assert shown["error"] == "the downstream service is down" and shown["attempts"] == 5
    assert shown["type"] == "user_notification"

    detail = await ok_json(
        await client.get(f"/admin/api/dead-letters/messages/{first}", headers=admin.headers)
    )
    assert detail["queue"] == "notifications.user"
    assert detail["headers"]["x-error"] == "the downstream service is down"
    assert orjson.loads(detail["body"])["type"] == "user_notification"

    requeue = "/admin/api/dead-letters/requeue"
    moved = await ok_json(
        await client.post(requeue, json={"message_id": first}, headers=admin.headers)
    )
    assert moved == {"count": 1}
    assert await ready_in(settings, "notifications.user") == 1
    missing = await client.post(requeue, json={"message_id": first}, headers=admin.headers)
    await refused(missing, 404, "not_found")

    everything = await ok_json(await client.get("/admin/api/dead-letters", headers=admin.headers))
    assert everything["queues"]["notifications.user"]["count"] == 1
    assert everything["queues"]["orders"]["count"] == 1
    purged = await ok_json(
        await client.post("/admin/api/dead-letters/purge", json={}, headers=admin.headers)
    )
    assert purged == {"count": 2}
    after = await ok_json(await client.get("/admin/api/dead-letters", headers=admin.headers))
    assert all(q["count"] == 0 for q in after["queues"].values())
    gone = await client.get(f"/admin/api/dead-letters/messages/{second}", headers=admin.headers)
    await refused(gone, 404, "not_found")


async def test_disconnecting_a_user_closes_their_connections_only_and_is_announced(
    client: Any, admin: Account, alice: Account, bob: Account
) -> None:
    dashboard = await connect(client, admin)
    await subscribe(dashboard, "admin:dashboard")
    first, second, bystander = (
        await connect(client, alice),
        await connect(client, alice),
        await connect(client, bob),
    )
    response = await client.post(f"/admin/api/users/{alice.id}/disconnect", headers=admin.headers)
    assert response.status == 204, await response.text()
    assert await close_code(first) == 4003
    assert await close_code(second) == 4003
    await assert_answers_ping(bystander)
    event = (await next_of(dashboard, "publication"))["data"]
    assert event["action"] == "disconnected" and event["user_id"] == alice.id
    assert event["by"] == admin.id
    # Only a disconnection: the session still works.
    assert (await client.get("/users/me", headers=alice.headers)).status == 200
    unknown = await client.post("/admin/api/users/999999999/disconnect", headers=admin.headers)
    await refused(unknown, 404, "not_found")
    for ws in (bystander, dashboard):
        await ws.close()


async def test_a_plain_user_cannot_watch_the_dashboard_channel(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    await ws.send_json({"type": "subscribe", "channel": "admin:dashboard", "id": 1})
    frame = await next_of(ws, "error")
    assert frame["code"] == "forbidden", frame
    await ws.close()


async def test_revoking_a_session_logs_its_user_out(
    client: Any, admin: Account, alice: Account
) -> None:
    sessions = await ok_json(
        await client.get(f"/admin/api/users/{alice.id}/sessions", headers=admin.headers)
    )
    assert len(sessions) == 1 and set(sessions[0]) >= {"id", "last_used_at", "ip"}
    ws = await connect(client, alice)
    path = f"/admin/api/sessions/{sessions[0]['id']}/revoke"
    assert (await client.post(path, headers=admin.headers)).status == 204
    assert await close_code(ws) == 4003
    assert (await client.get("/users/me", headers=alice.headers)).status == 401
    await refused(await client.post(path, headers=admin.headers), 404, "not_found")
    assert (
        await ok_json(
            await client.get(f"/admin/api/users/{alice.id}/sessions", headers=admin.headers)
        )
        == []
    )


async def test_closing_a_room_removes_it_for_everyone(
    client: Any, admin: Account, alice: Account
) -> None:
    created = await ok_json(
        await client.post(
            "/realtime/webrtc/rooms", json={"name": "standup"}, headers=alice.headers
        ),
        201,
    )
    overview = await ok_json(await client.get("/admin/api/overview", headers=admin.headers))
    assert created["id"] in [room["id"] for room in overview["rooms"]]
    path = f"/admin/api/rooms/{created['id']}"
    assert (await client.delete(path, headers=admin.headers)).status == 204
    gone = await client.get(f"/realtime/webrtc/rooms/{created['id']}", headers=alice.headers)
    assert gone.status == 404
    await refused(await client.delete(path, headers=admin.headers), 404, "not_found")


async def test_without_the_broker_dead_letters_answer_503_and_the_overview_says_so(
    aiohttp_client: Any, settings: Settings, db: Any, auth_service: Any
) -> None:
    no_broker = settings.model_copy(
        update={"RABBITMQ_URL": SecretStr("amqp://guest:guest@127.0.0.1:9/")}
    )
    client = await aiohttp_client(create_app(no_broker))
    admin = await log_in(client, await create_account(db, auth_service, role=Role.admin))
    response = await client.get("/admin/api/dead-letters", headers=admin.headers)
    await refused(response, 503, "service_unavailable")
    overview = await ok_json(await client.get("/admin/api/overview", headers=admin.headers))
    assert "broker" in overview["messaging"]["status"]
    assert overview["this_node"]["users"] == []


async def test_an_admin_cannot_disconnect_or_revoke_a_superuser_but_a_superuser_can(
    client: Any, admin: Account, superuser: Account
) -> None:
    """As everywhere in user administration (server/auth/admin_rules.py): admins manage
    plain users; admins and superusers are a superuser's to act on."""
    sessions = await ok_json(
        await client.get(f"/admin/api/users/{superuser.id}/sessions", headers=admin.headers)
    )  # reading is every admin's
    revoke = f"/admin/api/sessions/{sessions[0]['id']}/revoke"
    disconnect = f"/admin/api/users/{superuser.id}/disconnect"
    ws = await connect(client, superuser)
    await refused(await client.post(disconnect, headers=admin.headers), 403, "insufficient_role")
    await refused(await client.post(revoke, headers=admin.headers), 403, "insufficient_role")
    await assert_answers_ping(ws)  # still connected, still logged in
    assert (await client.get("/users/me", headers=superuser.headers)).status == 200
    other = await connect(client, admin)
    assert (await client.post(f"/admin/api/users/{admin.id}/disconnect",
                              headers=superuser.headers)).status == 204  # fmt: skip
    assert await close_code(other) == 4003
    await ws.close()
