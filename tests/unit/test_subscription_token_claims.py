"""Subscription tokens' time claims are numbers: PyJWT alone would take `"exp": "<digits>"`."""

from __future__ import annotations

import time

import jwt
import pytest

from server.auth.subscription_tokens import SubscriptionTokens
from server.kernel.realtime_errors import ChannelError

KEY = "k" * 32
CHANNEL = "docs:report-7"


def signed(**claims: object) -> str:
    return jwt.encode({"sub": "7", "channel": CHANNEL, **claims}, KEY, algorithm="HS256")


@pytest.mark.parametrize(
    "claims",
    [
        # a day ahead: the parameters are made at collection, the test may run much later
        {"exp": str(int(time.time()) + 86400)},
        {"exp": int(time.time()) + 86400, "nbf": "0"},
        {"exp": int(time.time()) + 86400, "iat": str(int(time.time()))},
    ],
)
def test_time_claims_given_as_strings_are_refused(claims: dict[str, object]) -> None:
    with pytest.raises(ChannelError) as refused:
        SubscriptionTokens(KEY).verify(signed(**claims), channel=CHANNEL, user_id=7)
    assert refused.value.code == "token_invalid"


def test_numeric_time_claims_are_accepted() -> None:
    now = time.time()
    token = signed(exp=now + 60, iat=int(now))
    grant = SubscriptionTokens(KEY).verify(token, channel=CHANNEL, user_id=7)
    assert (grant.channel, grant.user_id, grant.publish) == (CHANNEL, 7, False)
