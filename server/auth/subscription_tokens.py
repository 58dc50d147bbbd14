"""Subscription tokens: an application that decides elsewhere who may read a channel hands
its user a JWT naming that channel (as Centrifugo's subscription tokens do), signed HS256
with SUBSCRIPTION_TOKEN_KEY, which the user passes as `token` when subscribing.

    {"sub": "42", "channel": "docs:report-7", "exp": 1765170000, "publish": true}

`sub` is the user's id (a string, as JWT says; a number is accepted), `exp` is required
(a number, as are `nbf` and `iat` when given: not a string),
`publish` (optional, false by default) also lets the user publish on the channel. A token
grants exactly that channel to exactly that user, and only in namespaces with `token: true`
(CHANNEL_NAMESPACES). Every refusal is a ChannelError with its own code.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from server.kernel.realtime_errors import ChannelError

ALGORITHM = "HS256"
MAX_TOKEN_LENGTH = 4096
LEEWAY = 5  # seconds of clock skew between the application and this server


@dataclass(frozen=True)
class TokenGrant:
    channel: str
    user_id: int
    publish: bool


class SubscriptionTokens:
    """Verifies subscription tokens with the key from settings ("" : the feature is off)."""

    def __init__(self, key: str) -> None:
        self._key = key

    @property
    def enabled(self) -> bool:
        return bool(self._key)

    def verify(self, token: object, *, channel: str, user_id: int) -> TokenGrant:
        if not self._key:
            raise ChannelError(
                "token_disabled", "subscription tokens are not enabled on this server"
            )
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise ChannelError("token_invalid", "token must be a JWT (at most 4096 characters)")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "sub", "channel"], "verify_sub": False},
                leeway=LEEWAY,
            )
        except jwt.ExpiredSignatureError:
            raise ChannelError("token_expired", "the subscription token has expired") from None
        except jwt.PyJWTError as error:
            raise ChannelError(
                "token_invalid", f"the subscription token is not valid: {error}"
            ) from None
        for claim in ("exp", "nbf", "iat"):  # PyJWT takes "1765170000" (a string) too
            value = claims.get(claim)
            if claim in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ChannelError(
                    "token_invalid", f"the token's `{claim}` claim must be a number (a time)"
                )
        if claims.get("channel") != channel:
            raise ChannelError("token_wrong_channel", f"the token is not for {channel}")
        subject = claims.get("sub")
        if isinstance(subject, bool) or str(subject) != str(user_id):
            raise ChannelError("token_wrong_user", "the token was given to another user")
        publish = claims.get("publish", False)
        if not isinstance(publish, bool):
            raise ChannelError("token_invalid", "the token's `publish` claim must be a boolean")
        return TokenGrant(channel, user_id, publish)


def issue(key: str, *, channel: str, user_id: int, expires_at: int, publish: bool = False) -> str:
    """A token as an application would make it (the SDK's tests and docs use this)."""
    claims: dict[str, object] = {"sub": str(user_id), "channel": channel, "exp": expires_at}
    if publish:
        claims["publish"] = True
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def by_channel(tokens: list[str]) -> dict[str, str]:
    """Tokens keyed by the channel each names (read without verifying: verification comes
    when subscribing). A token that names no channel is kept under "" (and refused then)."""
    found: dict[str, str] = {}
    for token in tokens:
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            claims = {}
        channel = claims.get("channel") if isinstance(claims, dict) else None
        found[channel if isinstance(channel, str) else ""] = token
    return found
