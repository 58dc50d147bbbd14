"""A burst of notifications larger than HISTORY_SIZE (as after a server crash, when the
outbox and the retried requests apply hundreds within a second) stays recoverable on the
user's own channel: the `user` namespace keeps a longer history of its own."""

from __future__ import annotations

from typing import Any

import pytest

from server.hub.hub import hub_key
from server.hub.position import Position
from server.kernel.namespaces import USER_HISTORY_SIZE, history_sizes, parse_namespaces
from tests.integration.test_messaging_support import marker, wait_processed
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account

pytestmark = pytest.mark.usefixtures("clean_tables")

BURST = 300


async def test_a_burst_beyond_the_default_history_is_recovered_on_the_users_channel(
    client: Any, admin: Account, alice: Account, worker: Any, db: Any, settings: Any
) -> None:
    assert settings.HISTORY_SIZE < BURST <= USER_HISTORY_SIZE
    channel = f"user:{alice.id}"
    ws = await connect(client, alice)  # the subscriber, until it loses its connection
    await ws.send_json({"type": "subscribe", "channel": channel})
    cursor = (await next_of(ws, "subscribed"))["cursor"]
    await ws.close()

    prefix = marker("burst")
    texts = [f"{prefix}-{n}" for n in range(BURST)]
    messages = [
        {"kind": "user_notification", "payload": {"user_id": alice.id, "message": text}}
        for text in texts
    ]
    response = await client.post(
        "/messaging/batch", json={"messages": messages}, headers=admin.headers
    )
    assert response.status == 202, await response.text()
    ids = [result["message_id"] for result in (await response.json())["results"]]
    await wait_processed(db, *ids, timeout=60)

    ws = await connect(client, alice)
    await ws.send_json({"type": "subscribe", "channel": channel, "since": cursor})
    answer = await next_of(ws, "subscribed", timeout=15)
    assert answer["recovered"] is True
    events = [p["data"] for p in answer["publications"]]
    assert all(event["kind"] == "notification" for event in events)
    assert sorted(event["body"] for event in events) == sorted(texts)  # each one, once
    assert len({event["id"] for event in events}) == BURST
    offsets = [p["offset"] for p in answer["publications"]]
    assert offsets == list(range(offsets[0], offsets[0] + BURST))
    await ws.close()


async def test_other_channels_keep_history_size(client: Any, alice: Account, settings: Any) -> None:
    """A public channel still keeps HISTORY_SIZE: past it, recovery says recovered: false."""
    channel = f"public:{marker('small')}"
    ws = await connect(client, alice)
    await ws.send_json({"type": "subscribe", "channel": channel})
    cursor = (await next_of(ws, "subscribed"))["cursor"]
    await ws.send_json({"type": "unsubscribe", "channel": channel})
    await next_of(ws, "unsubscribed")
    hub = client.app[hub_key]
    items = [(channel, str(n).encode(), None) for n in range(settings.HISTORY_SIZE + 20)]
    assert all(isinstance(p, Position) for p in await hub.publish_many(items))
    await ws.send_json({"type": "subscribe", "channel": channel, "since": cursor})
    answer = await next_of(ws, "subscribed")
    assert answer["recovered"] is False
    assert answer["publications"] == []
    await ws.close()


def test_history_size_is_a_namespace_option_and_built_ins_keep_their_rules() -> None:
    defaults = parse_namespaces("")
    assert history_sizes(defaults) == {"user": USER_HISTORY_SIZE}
    changed = parse_namespaces('{"user": {"history_size": 5000}, "chat": {"history_size": 50}}')
    assert history_sizes(changed) == {"user": 5000, "chat": 50}
    # Naming a built-in to change its size keeps who may subscribe and publish there.
    assert (changed["user"].subscribe, changed["user"].publish) == ("owner", "nobody")
    for bad in ('{"chat": {"history_size": -1}}', '{"chat": {"history_size": "lots"}}'):
        with pytest.raises(ValueError, match="history_size"):
            parse_namespaces(bad)
