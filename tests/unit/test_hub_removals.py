"""Which subscriptions a private channel's removal event ends (server/hub/removals.py):
named members are found by user, a deleted channel among its subscribers; only "member"
grants end, never one still being made."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from server.hub.connection import Connection
from server.hub.removals import member_subscriptions, removed_connections
from server.hub.subscription import Subscription

CHANNEL = "private:proj"


@dataclass(eq=False)
class FakeConnection:
    user_id: int
    subscriptions: dict[str, Subscription] = field(default_factory=dict)


def connected(user_id: int, grant: str) -> tuple[Any, Subscription]:
    subscription = Subscription(CHANNEL, grant)
    connection = FakeConnection(user_id, {CHANNEL: subscription})
    return connection, subscription


def test_named_members_are_found_by_user_not_by_scanning_the_channel() -> None:
    bob, _ = connected(2, "member")
    carol, _ = connected(3, "member")
    users = cast(dict[int, set[Connection]], {2: {bob}, 3: {carol}})
    # no subscriber map at all: what is found comes from the users' own connections
    event = {"channel": CHANNEL, "user_ids": [2]}
    assert removed_connections(event, {}, users, set()) == [bob]
    assert (
        removed_connections({"channel": "private:other", "user_ids": [2]}, {}, users, set()) == []
    )


def test_a_deleted_channel_ends_every_member_grant_only() -> None:
    member, member_sub = connected(2, "member")
    token, token_sub = connected(3, "token")
    admin, admin_sub = connected(4, "rules")
    joining, joining_sub = connected(5, "member")
    subscribers = {
        CHANNEL: {member: member_sub, token: token_sub, admin: admin_sub, joining: joining_sub}
    }
    event = {"channel": CHANNEL, "all": True}
    assert removed_connections(event, subscribers, {}, {joining_sub}) == [member]


def test_member_subscriptions_are_grouped_by_channel_and_user() -> None:
    first, first_sub = connected(2, "member")
    second, second_sub = connected(2, "member")
    token, token_sub = connected(3, "token")
    subscribers = {CHANNEL: {first: first_sub, second: second_sub, token: token_sub}}
    assert member_subscriptions(subscribers, set()) == {(CHANNEL, 2): [first, second]}
