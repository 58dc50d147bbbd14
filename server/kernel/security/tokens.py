"""Signed JWT access tokens (PyJWT, HMAC only). The first signing key signs; every
configured key verifies, so a rotated-out key keeps working until it is removed. Every
failure to decode is one `InvalidToken` whose reason is short and safe to show a client.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

MAX_TOKEN_LENGTH = 8 * 1024  # refuse before parsing: nothing we issue comes close
VERIFIED_CACHE_SIZE = 1024  # tokens whose signature was checked, kept per codec
HMAC_ALGORITHMS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
MIN_SECRET_BYTES = 32
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "type", "jti"]
RESERVED_CLAIMS = frozenset(REQUIRED_CLAIMS) - {"sub"}
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
DERIVED_KEY_ID = "k0"
DERIVED_KEY_LABEL = b"realtime-server/access-token-signing-key/v1"

# Checked in order, so subclasses (InvalidSignatureError is a DecodeError) come first.
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidIssuedAtError, "invalid issued-at time"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.InvalidSignatureError, "invalid signature"),
    (jwt.DecodeError, "malformed token"),
)


class InvalidToken(Exception):
    """The token cannot be trusted; `reason` says why in words fit for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SigningKey:
    """One HMAC secret and the key id (`kid` header) that names it."""

    kid: str
    secret: str = field(repr=False)


class TokenCodec:
    """Encodes and decodes the tokens of one issuer for one audience."""

    def __init__(
        self,
        keys: Sequence[SigningKey],
        *,
        issuer: str,
        audience: str,
        algorithm: str = "HS256",
        leeway: int = 0,
    ) -> None:
        if algorithm not in HMAC_ALGORITHMS:
            raise ValueError(f"algorithm must be one of {sorted(HMAC_ALGORITHMS)}")
        if not keys:
            raise ValueError("at least one signing key is needed")
        # RFC 7518 3.2: an HMAC key at least as long as the hash output (32 bytes for HS256).
        min_bytes = max(MIN_SECRET_BYTES, HMAC_ALGORITHMS[algorithm]().digest_size)
        for key in keys:
            if not KEY_ID_PATTERN.fullmatch(key.kid):
                raise ValueError(f"key id {key.kid!r} must match {KEY_ID_PATTERN.pattern}")
            if len(key.secret.encode()) < min_bytes:
                raise ValueError(f"secret of key {key.kid!r} is shorter than {min_bytes} bytes")
        self.keys_by_id = {key.kid: key for key in keys}
        if len(self.keys_by_id) != len(keys):
            raise ValueError("key ids must be unique")
        self.signing_key = keys[0]
        self.issuer = issuer
        self.audience = audience
        self.algorithm = algorithm
        self.leeway = leeway
        # token -> its verified claims. A token's signature, issuer and audience never
        # change, so they are checked once; the times are checked on every use.
        self._verified: dict[str, dict[str, Any]] = {}

    def encode(
        self,
        claims: dict[str, Any],
        *,
        token_type: str,
        ttl: timedelta,
        now: datetime | None = None,
    ) -> str:
        """A token carrying `claims` (which must hold a string "sub"), valid for `ttl`."""
        if not isinstance(claims.get("sub"), str):
            raise ValueError('claims need a string "sub"')
        if reserved := RESERVED_CLAIMS & claims.keys():
            raise ValueError(f"claims set by the codec itself: {sorted(reserved)}")
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        issued_at = datetime.now(UTC) if now is None else now
        if issued_at.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        payload = {
            **claims,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + ttl,
            "jti": secrets.token_urlsafe(16),
            "type": token_type,
        }
        return jwt.encode(
            payload,
            self.signing_key.secret,
            algorithm=self.algorithm,
            headers={"kid": self.signing_key.kid},
        )

    def decode(self, token: str, *, token_type: str) -> dict[str, Any]:
        """The verified claims of `token`; InvalidToken for anything else."""
        untrusted: object = token  # callers pass whatever arrived on the wire
        if not isinstance(untrusted, str):
            raise InvalidToken("malformed token")
        if len(untrusted) > MAX_TOKEN_LENGTH:
            raise InvalidToken("token too large")
        claims = self._verified.get(untrusted)
        if claims is None:
            claims = self._verify(untrusted)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.pop(next(iter(self._verified)))  # the oldest entry
            self._verified[untrusted] = claims
        else:
            self._check_times(claims)
        if claims.get("type") != token_type:
            raise InvalidToken("wrong token type")
        return dict(claims)

    def _check_times(self, claims: dict[str, Any]) -> None:
        """What PyJWT checks of the times, for a token verified earlier."""
        now = datetime.now(UTC).timestamp()
        if claims["exp"] <= now - self.leeway:
            raise InvalidToken("token expired")
        if claims["nbf"] > now + self.leeway:
            raise InvalidToken("token not yet valid")

    def _verify(self, untrusted: str) -> dict[str, Any]:
        key = self._verifying_key(untrusted)
        try:
            claims = jwt.decode(
                untrusted,
                key.secret,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
            )
        except jwt.MissingRequiredClaimError as error:
            raise InvalidToken(f"missing claim {error.claim}") from None
        except jwt.PyJWTError as error:
            raise InvalidToken(_reason_for(error)) from None
        return claims

    def _verifying_key(self, token: str) -> SigningKey:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        if header.get("alg") != self.algorithm:
            raise InvalidToken("algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("missing key id")
        key = self.keys_by_id.get(kid)
        if key is None:
            raise InvalidToken("unknown key id")
        return key


def _reason_for(error: jwt.PyJWTError) -> str:
    for error_class, reason in _REASONS:
        if isinstance(error, error_class):
            return reason
    return "invalid token"


def parse_signing_keys(spec: str, fallback_secret: str) -> list[SigningKey]:
    """Keys from a setting such as "k2:secretB,k1:secretA" (the first one signs).

    An empty spec gives one key, "k0", derived from `fallback_secret` with HMAC-SHA256 so
    the token key differs from every other use of that secret. Errors never echo secrets.
    """
    if not spec.strip():
        derived = hmac.new(fallback_secret.encode(), DERIVED_KEY_LABEL, hashlib.sha256)
        return [SigningKey(DERIVED_KEY_ID, derived.hexdigest())]
    keys: list[SigningKey] = []
    for position, entry in enumerate(spec.split(","), start=1):
        kid, separator, secret = (part.strip() for part in entry.partition(":"))
        if not separator or not kid or not secret:
            raise ValueError(f"signing key {position} is not of the form kid:secret")
        if not KEY_ID_PATTERN.fullmatch(kid):
            raise ValueError(f"signing key {position}: key id must match {KEY_ID_PATTERN.pattern}")
        if any(key.kid == kid for key in keys):
            raise ValueError(f"signing key {position}: key id {kid!r} is used twice")
        keys.append(SigningKey(kid, secret))
    return keys
