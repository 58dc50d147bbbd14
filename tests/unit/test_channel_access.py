"""The pure parts of channel access: namespace options `private` and `token`, the
synchronous checks (private channels: admins only), publishing by how a subscription was
granted, and subscription token verification."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from server.auth.subscription_tokens import SubscriptionTokens, by_channel, issue
from server.hub.access import ChannelAccess
from server.hub.channels import Channels
from server.hub.subscription import Subscription
from server.kernel.namespaces import parse_namespaces
from server.kernel.principal import Principal, Role
from server.kernel.realtime_errors import ChannelError

KEY = "k" * 32
USER = Principal(7, Role.user)
ADMIN = Principal(1, Role.admin)


def test_token_is_a_namespace_option_and_private_is_the_private_namespace() -> None:
    namespaces = parse_namespaces('{"docs": {"token": true}, "private": {"presence": false}}')
    assert namespaces["docs"].token and not namespaces["docs"].private
    assert namespaces["private"].private and not namespaces["private"].presence
    with pytest.raises(ValueError, match="must be true or false"):
        parse_namespaces('{"docs": {"token": "yes"}}')
    with pytest.raises(ValueError, match="options are"):
        parse_namespaces('{"team": {"private": true}}')


def test_synchronous_checks_keep_private_channels_to_admins() -> None:
    channels = Channels(parse_namespaces(""))
    channel = channels.parse("private:proj")
    with pytest.raises(ChannelError, match="members only"):
        channels.check_subscribe(USER, channel)
    with pytest.raises(ChannelError):
        channels.check_publish(USER, channel)
    channels.check_subscribe(ADMIN, channel)
    channels.check_rules("subscribe", USER, channel)  # the namespace alone allows users


def publish_allowed(channel_name: str, subscription: Subscription | None) -> bool:
    channels = Channels(parse_namespaces('{"docs": {"publish": "nobody", "token": true}}'))
    access = ChannelAccess(channels, None, SubscriptionTokens(KEY))  # type: ignore[arg-type]
    try:
        access.publish(USER, channels.parse(channel_name), subscription)
    except ChannelError:
        return False
    return True


def test_publishing_follows_how_the_subscription_was_granted() -> None:
    assert not publish_allowed("private:p", None)
    assert publish_allowed("private:p", Subscription("private:p", "member"))
    assert not publish_allowed("docs:d", Subscription("docs:d", "token", publish=False))
    assert publish_allowed("docs:d", Subscription("docs:d", "token", publish=True))
    assert publish_allowed("public:x", None)


def verify(token: Any, channel: str = "docs:a", user_id: int = 7, key: str = KEY) -> str:
    try:
        grant = SubscriptionTokens(key).verify(token, channel=channel, user_id=user_id)
    except ChannelError as error:
        return error.code
    return f"ok publish={grant.publish}"


def test_token_verification() -> None:
    soon = int(time.time()) + 60
    good = issue(KEY, channel="docs:a", user_id=7, expires_at=soon)
    assert verify(good) == "ok publish=False"
    assert verify(issue(KEY, channel="docs:a", user_id=7, expires_at=soon, publish=True)) == (
        "ok publish=True"
    )
    assert verify(good, key="") == "token_disabled"
    assert verify(good, channel="docs:b") == "token_wrong_channel"
    assert verify(good, user_id=8) == "token_wrong_user"
    assert verify(issue(KEY, channel="docs:a", user_id=7, expires_at=1)) == "token_expired"
    assert verify(issue("x" * 32, channel="docs:a", user_id=7, expires_at=soon)) == "token_invalid"
    numeric = jwt.encode({"sub": 7, "channel": "docs:a", "exp": soon}, KEY, algorithm="HS256")
    assert verify(numeric) == "ok publish=False"
    as_bool = jwt.encode({"sub": True, "channel": "docs:a", "exp": soon}, KEY, algorithm="HS256")
    assert verify(as_bool, user_id=1) == "token_wrong_user"
    for garbage in (None, 5, "", "a.b.c", "x" * 5000):
        assert verify(garbage) == "token_invalid"


def test_tokens_are_keyed_by_the_channel_they_name() -> None:
    a = issue(KEY, channel="docs:a", user_id=7, expires_at=1)
    assert by_channel([a, "garbage"]) == {"docs:a": a, "": "garbage"}
