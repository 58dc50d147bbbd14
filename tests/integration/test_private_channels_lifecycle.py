"""A private channel's end and what must not outlive it: deleting it (or its owner's
account) ends the members' subscriptions with one event, and a channel created later under
the same name inherits none of its members, cached answers, history or files; a removal
this node missed (its bus was down) is caught by the member recheck."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
import pytest

from server.auth.subscription_tokens import issue
from server.hub.hub import hub_key
from server.hub.private import STORE_IF_UNCHANGED
from storage import private_channels
from storage.db import connect as db_connect
from storage.db import db_key
from storage.db import transaction as db_transaction
from tests.integration.test_private_channels import (
    add_member,
    create_channel,
    fresh_name,
    members_url,
)
from tests.integration.test_realtime_channels import custom_client, error_for, publish, subscribe
from tests.integration.test_realtime_ws import connect, next_of
from tests.integration.test_subscription_tokens import KEY
from tests.support.accounts import Account, create_account, log_in
from tests.support.uploads import form, post

PRIVATE_TAKES_TOKENS = orjson.dumps({"private": {"token": True}}).decode()
REMOVED = {"type": "unsubscribed", "code": "removed", "reason": "the channel was deleted"}


async def test_a_recreated_name_inherits_no_member_history_or_file(
    client: Any, db: Any, auth_service: Any, alice: Account, bob: Account
) -> None:
    carol = await log_in(client, await create_account(db, auth_service))
    name = fresh_name()
    channel = await create_channel(client, alice, name)
    await add_member(client, alice, channel, bob.id)
    owner = await connect(client, alice)
    first = await subscribe(owner, channel)
    await publish(owner, channel, {"secret": "alice's plan"})
    uploaded = await post(client, alice, form(b"alice's file", channel=channel))
    assert uploaded.status == 201, await uploaded.text()
    url = (await uploaded.json())["url"]
    member = await connect(client, bob)
    await subscribe(member, channel)  # bob's "member" answer is cached now

    response = await client.delete(f"/realtime/private-channels/{name}", headers=alice.headers)
    assert response.status == 204
    assert await next_of(member, "unsubscribed") == {**REMOVED, "channel": channel}

    await create_channel(client, carol, name)
    # bob was a member of alice's channel, not of carol's: no cached "yes" lets him in
    assert (await error_for(member, {"type": "subscribe", "channel": channel}))["code"] == (
        "forbidden"
    )
    newcomer = await connect(client, carol)
    replay = await subscribe(newcomer, channel, since=first["cursor"])
    assert replay["recovered"] is False and not replay.get("publications")
    assert (await client.get(url, headers=carol.headers)).status == 404
    mine = await client.get(url, headers=alice.headers)  # the file stays its owner's
    assert mine.status == 200 and await mine.read() == b"alice's file"
    for ws in (owner, member, newcomer):
        await ws.close()


@pytest.mark.parametrize("by", ["self", "admin"])
async def test_deleting_the_owners_account_deletes_their_channels(
    client: Any, db: Any, auth_service: Any, admin: Account, bob: Account, by: str
) -> None:
    owner = await log_in(client, await create_account(db, auth_service))
    name = fresh_name()
    channel = await create_channel(client, owner, name)
    await add_member(client, owner, channel, bob.id)
    member = await connect(client, bob)
    await subscribe(member, channel)
    if by == "self":
        response = await client.delete(
            "/users/me", json={"password": owner.password}, headers=owner.headers
        )
    else:
        response = await client.delete(f"/users/{owner.id}", headers=admin.headers)
    assert response.status == 204, await response.text()
    assert await next_of(member, "unsubscribed") == {**REMOVED, "channel": channel}
    # the name is free, and bob is no member of the next channel of that name
    await create_channel(client, admin, name)
    assert (await error_for(member, {"type": "subscribe", "channel": channel}))["code"] == (
        "forbidden"
    )
    await member.close()


async def test_deleting_a_channel_sends_one_event_whatever_its_members(
    client: Any, db: Any, auth_service: Any, alice: Account
) -> None:
    channel = await create_channel(client, alice)
    users = [await create_account(db, auth_service) for _ in range(5)]
    for user in users:
        await add_member(client, alice, channel, user.id)
    hub = client.app[hub_key]
    events = hub.redis.pubsub()
    await events.subscribe(hub.membership.removals)
    try:
        await events.get_message(timeout=1)  # the subscribe confirmation
        response = await client.delete(
            f"/realtime/private-channels/{channel.partition(':')[2]}", headers=alice.headers
        )
        assert response.status == 204
        received = []
        while (message := await events.get_message(timeout=1)) is not None:
            received.append(orjson.loads(message["data"]))
    finally:
        await events.aclose()
    assert received == [{"channel": channel, "all": True, "reason": "the channel was deleted"}]


async def test_a_removal_this_node_missed_is_caught_by_the_recheck(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = await create_channel(client, alice)
    await add_member(client, alice, channel, bob.id)
    member = await connect(client, bob)
    await subscribe(member, channel)
    hub = client.app[hub_key]
    # the removal is committed and the cache forgotten, but its event never arrives (as
    # when this node's pub/sub connection was down when it was published)
    async with db_connect(client.app[db_key]) as conn:
        assert await private_channels.remove_member(conn, channel, bob.id)
    await hub.membership.changed(channel, [bob.id])
    checking = asyncio.ensure_future(hub.subscriptions.keep_checking_members(0.05))
    try:
        frame = await next_of(member, "unsubscribed")
    finally:
        checking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checking
    assert frame["channel"] == channel and frame["code"] == "removed"
    assert await hub.subscriptions.recheck_members() == 0  # nothing left to end
    await member.close()


async def test_asking_for_a_taken_name_leaves_the_channel_alone(
    client: Any, alice: Account, bob: Account
) -> None:
    name = fresh_name()
    channel = await create_channel(client, alice, name)
    owner = await connect(client, alice)
    first = await subscribe(owner, channel)
    await publish(owner, channel, {"kept": True})
    response = await client.post(
        "/realtime/private-channels", json={"name": name}, headers=bob.headers
    )
    assert response.status == 409
    await owner.send_json({"type": "unsubscribe", "channel": channel})
    await next_of(owner, "unsubscribed")
    replay = await subscribe(owner, channel, since=first["cursor"])
    assert replay["recovered"] is True
    assert [p["data"] for p in replay["publications"]] == [{"kept": True}]
    await owner.close()


async def test_a_lookup_racing_a_removal_never_caches_the_old_answer(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = await create_channel(client, alice)
    await add_member(client, alice, channel, bob.id)
    membership = client.app[hub_key].membership
    version_key, _ = membership.keys(channel)
    seen = await membership.redis.get(version_key)
    # a lookup read the version, then "1" from PostgreSQL; the removal commits and bumps
    # the version before the lookup stores its answer
    response = await client.delete(members_url(channel, bob.id), headers=alice.headers)
    assert response.status == 204
    await membership.redis.eval(
        STORE_IF_UNCHANGED,
        2,
        *membership.keys(channel),
        seen.decode() if seen else "",
        str(bob.id),
        "1",
        300,
    )
    assert await membership.is_member(channel, bob.id) is False


@pytest.fixture
async def tokens_private_client(aiohttp_client: Any, settings: Any) -> Any:
    return await custom_client(
        aiohttp_client,
        settings,
        SUBSCRIPTION_TOKEN_KEY=KEY,
        CHANNEL_NAMESPACES=PRIVATE_TAKES_TOKENS,
    )


async def test_a_token_granted_subscription_survives_a_removal(
    tokens_private_client: Any, alice: Account, bob: Account
) -> None:
    client = tokens_private_client
    channel = await create_channel(client, alice)
    await add_member(client, alice, channel, bob.id)
    token = issue(KEY, channel=channel, user_id=bob.id, expires_at=int(time.time()) + 60)
    member = await connect(client, bob)
    await subscribe(member, channel, token=token)
    owner = await connect(client, alice)
    await subscribe(owner, channel)
    response = await client.delete(members_url(channel, bob.id), headers=alice.headers)
    assert response.status == 204
    await publish(owner, channel, {"still": "granted"})
    publication = await next_of(member, "publication")
    assert publication["data"] == {"still": "granted"}
    for ws in (member, owner):
        await ws.close()


async def test_a_user_owns_at_most_private_channels_per_user(
    aiohttp_client: Any, settings: Any, alice: Account, admin: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, PRIVATE_CHANNELS_PER_USER=2)
    first = await create_channel(client, alice)
    await create_channel(client, alice)
    response = await client.post(
        "/realtime/private-channels", json={"name": fresh_name()}, headers=alice.headers
    )
    assert response.status == 409
    error = (await response.json())["error"]
    assert (
        error["code"] == "too_many_channels" and "PRIVATE_CHANNELS_PER_USER=2" in error["message"]
    )
    # deleting one makes room; admins are not limited
    name = first.partition(":")[2]
    response = await client.delete(f"/realtime/private-channels/{name}", headers=alice.headers)
    assert response.status == 204
    await create_channel(client, alice)
    for _ in range(3):
        await create_channel(client, admin)


async def test_a_member_added_while_the_channel_is_deleted_is_refused(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = await create_channel(client, alice)
    async with db_transaction(client.app[db_key]) as conn:
        assert await private_channels.delete(conn, channel)  # the channel row stays locked
        adding = asyncio.ensure_future(
            client.put(members_url(channel, bob.id), headers=alice.headers)
        )
        await asyncio.sleep(0.3)  # the addition found the channel, and now waits for it
        assert not adding.done()
    response = await adding
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "unknown_channel"
    async with db_connect(client.app[db_key]) as conn:
        assert await private_channels.role_of(conn, channel, bob.id) is None
