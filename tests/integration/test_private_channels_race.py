"""A subscribe racing a member's removal, on the node that removes and on another: the
lookup said "member", then the removal was committed and its event handled before the
subscription existed. The subscribe looks again and refuses: the member never ends up
subscribed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.app import create_app
from server.hub.hub import hub_key
from tests.integration.test_private_channels import add_member, create_channel, members_url
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account


@pytest.mark.parametrize("on_another_node", [False, True])
async def test_a_subscribe_racing_a_removal_never_outlives_it(
    aiohttp_client: Any,
    client: Any,
    settings: Any,
    alice: Account,
    bob: Account,
    on_another_node: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = await aiohttp_client(create_app(settings)) if on_another_node else client
    hub = node.app[hub_key]
    channel = await create_channel(client, alice)
    await add_member(client, alice, channel, bob.id)
    looked_up, go_on = asyncio.Event(), asyncio.Event()
    real_lookup = hub.membership.is_member

    async def slow_lookup(name: str, user_id: int) -> bool:
        """The real answer, held back once until the removal went through."""
        member = await real_lookup(name, user_id)
        if not looked_up.is_set():
            looked_up.set()
            await go_on.wait()
        return bool(member)

    monkeypatch.setattr(hub.membership, "is_member", slow_lookup)
    ws = await connect(node, bob)
    await ws.send_json({"type": "subscribe", "channel": channel, "id": 1})
    await asyncio.wait_for(looked_up.wait(), 5)  # the lookup answered "member"
    seen = hub.subscriptions.removals
    response = await client.delete(members_url(channel, bob.id), headers=alice.headers)
    assert response.status == 204
    async with asyncio.timeout(5):  # this node handled the removal (nothing to end yet)
        while hub.subscriptions.removals == seen:  # noqa: ASYNC110 (a counter, not an event)
            await asyncio.sleep(0.01)
    go_on.set()
    error = await next_of(ws, "error")
    assert (error["code"], error["ref"]) == ("forbidden", 1)
    assert not node.app[hub_key].fanout.subscribers.get(channel)
    await ws.close()
