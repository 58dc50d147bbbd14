"""Access tokens: round trips, key rotation, and one InvalidToken with a clear reason for
every way a token can be wrong, forged or confused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from server.kernel.security.tokens import (
    InvalidToken,
    SigningKey,
    TokenCodec,
    parse_signing_keys,
)

ISSUER = "realtime-server"
AUDIENCE = "realtime-api"
KEY_OLD = SigningKey("k1", "old-secret-0123456789abcdefghijklmnopqrstuvwxyz")
KEY_NEW = SigningKey("k2", "new-secret-0123456789abcdefghijklmnopqrstuvwxyz")
TTL = timedelta(minutes=15)


def make_codec(*keys: SigningKey, **overrides: Any) -> TokenCodec:
    options: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE} | overrides
    return TokenCodec(keys or (KEY_OLD,), **options)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A token built by hand, as an attacker would; HMAC-SHA256 with `key`, or unsigned."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), "sha256").digest()
    return f"{signing_input}.{b64url(signature)}"


def good_claims(**changes: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "sub": "42",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "jti-1",
        "type": "access",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def signed(header_changes: dict[str, Any] | None = None, **claim_changes: Any) -> str:
    """A hand-made token signed with k1's real secret; None removes a header or claim."""
    header = {"alg": "HS256", "typ": "JWT", "kid": "k1"} | (header_changes or {})
    header = {name: value for name, value in header.items() if value is not None}
    return forge(header, good_claims(**claim_changes), KEY_OLD.secret.encode())


def issued(codec: TokenCodec, **options: Any) -> str:
    """A token `codec` itself issues, with `options` passed on to encode."""
    arguments: dict[str, Any] = {"token_type": "access", "ttl": TTL} | options
    return codec.encode({"sub": "1", **arguments.pop("extra", {})}, **arguments)


def at(offset: timedelta) -> datetime:
    return datetime.now(UTC) + offset


def rsa_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def hs256_signed_with_rsa_public_key(codec: TokenCodec) -> str:
    public_pem = (
        rsa_private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return forge({"alg": "HS256", "typ": "JWT", "kid": "k1"}, good_claims(), public_pem)


def rs256_token(codec: TokenCodec) -> str:
    return jwt.encode(good_claims(), rsa_private_key(), algorithm="RS256", headers={"kid": "k1"})


def hs512_with_our_secret(codec: TokenCodec) -> str:
    header = b64url(json.dumps({"alg": "HS512", "kid": "k1"}).encode())
    signing_input = f"{header}.{b64url(json.dumps(good_claims()).encode())}"
    signature = hmac.new(KEY_OLD.secret.encode(), signing_input.encode(), hashlib.sha512)
    return f"{signing_input}.{b64url(signature.digest())}"


def tampered_payload(codec: TokenCodec) -> str:
    header, _, signature = issued(codec).split(".")
    return f"{header}.{b64url(json.dumps(good_claims(sub='1337')).encode())}.{signature}"


def signature_stripped(codec: TokenCodec) -> str:
    return issued(codec).rsplit(".", 1)[0] + "."


InvalidCase = Callable[[TokenCodec], object]
INVALID_CASES: list[tuple[str, InvalidCase, str]] = [
    ("alg none", lambda c: forge({"alg": "none", "kid": "k1"}, good_claims(), None),
     "algorithm not allowed"),
    ("alg None, signed anyway", lambda c: signed({"alg": "None"}), "algorithm not allowed"),
    ("HS256 with RSA public key as secret", hs256_signed_with_rsa_public_key, "invalid signature"),
    ("RS256 token", rs256_token, "algorithm not allowed"),
    ("HS512 with our secret", hs512_with_our_secret, "algorithm not allowed"),
    ("tampered payload", tampered_payload, "invalid signature"),
    ("bad signature", lambda c: forge({"alg": "HS256", "kid": "k1"}, good_claims(), b"z" * 48),
     "invalid signature"),
    ("signature stripped", signature_stripped, "invalid signature"),
    ("expired", lambda c: issued(c, now=at(-timedelta(hours=1))), "token expired"),
    ("not yet valid", lambda c: issued(c, now=at(timedelta(hours=1))), "token not yet valid"),
    ("wrong audience", lambda c: issued(make_codec(audience="other-api")), "wrong audience"),
    ("wrong issuer", lambda c: issued(make_codec(issuer="someone-else")), "wrong issuer"),
    ("wrong type", lambda c: issued(c, token_type="refresh"), "wrong token type"),
    ("unknown kid", lambda c: issued(make_codec(SigningKey("k9", KEY_OLD.secret))),
     "unknown key id"),
    ("missing kid", lambda c: signed({"kid": None}), "missing key id"),
    ("empty kid", lambda c: signed({"kid": ""}), "missing key id"),
    ("kid not a string", lambda c: signed({"kid": 1}), "malformed token"),
    ("missing jti", lambda c: signed(jti=None), "missing claim jti"),
    ("missing sub", lambda c: signed(sub=None), "missing claim sub"),
    ("missing exp", lambda c: signed(exp=None), "missing claim exp"),
    ("missing type", lambda c: signed(type=None), "missing claim type"),
    ("garbage string", lambda c: "not a token", "malformed token"),
    ("three garbage parts", lambda c: "a.b.c", "malformed token"),
    ("empty string", lambda c: "", "malformed token"),
    ("None", lambda c: None, "malformed token"),
    ("bytes", lambda c: issued(c).encode(), "malformed token"),
    ("number", lambda c: 12345, "malformed token"),
    ("oversized", lambda c: issued(c, extra={"pad": "x" * 9000}), "token too large"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [pytest.param(make, reason, id=name) for name, make, reason in INVALID_CASES],
)
def test_every_bad_token_is_one_invalid_token_with_its_reason(
    make_token: InvalidCase, reason: str
) -> None:
    codec = make_codec()
    token = make_token(codec)
    with pytest.raises(InvalidToken) as caught:
        codec.decode(token, token_type="access")  # type: ignore[arg-type]  # wire input
    assert caught.value.reason == reason
    assert str(caught.value) == reason


def test_round_trip_keeps_claims_and_sets_the_registered_ones() -> None:
    codec = make_codec()
    now = datetime.now(UTC)
    token = codec.encode({"sub": "42", "role": "admin"}, token_type="access", ttl=TTL, now=now)
    claims = codec.decode(token, token_type="access")
    assert claims["sub"] == "42"
    assert claims["role"] == "admin"
    assert claims["type"] == "access"
    assert (claims["iss"], claims["aud"]) == (ISSUER, AUDIENCE)
    assert claims["iat"] == claims["nbf"] == int(now.timestamp())
    assert claims["exp"] - claims["iat"] == TTL.total_seconds()
    assert jwt.get_unverified_header(token)["kid"] == "k1"
    other = codec.encode({"sub": "42"}, token_type="access", ttl=TTL)
    assert codec.decode(other, token_type="access")["jti"] != claims["jti"]


def test_leeway_accepts_a_token_just_expired() -> None:
    token = make_codec().encode(
        {"sub": "1"}, token_type="access", ttl=timedelta(seconds=1), now=at(-timedelta(seconds=5))
    )
    assert make_codec(leeway=30).decode(token, token_type="access")["sub"] == "1"
    with pytest.raises(InvalidToken, match="token expired"):
        make_codec().decode(token, token_type="access")


class _Later(datetime):
    """datetime whose now() is two hours ahead: a token decoded earlier has expired."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.now(tz) + timedelta(hours=2)


def test_a_token_verified_once_still_expires_and_keeps_its_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec = make_codec()
    token = codec.encode({"sub": "5"}, token_type="access", ttl=timedelta(hours=1))
    first = codec.decode(token, token_type="access")
    first["sub"] = "changed by the caller"  # callers get a copy
    assert codec.decode(token, token_type="access")["sub"] == "5"
    with pytest.raises(InvalidToken, match="wrong token type"):
        codec.decode(token, token_type="refresh")
    monkeypatch.setattr("server.kernel.security.tokens.datetime", _Later)
    with pytest.raises(InvalidToken, match="token expired"):
        codec.decode(token, token_type="access")
    assert make_codec(leeway=3 * 3600).decode(token, token_type="access")["sub"] == "5"


def test_a_token_not_yet_valid_is_refused_on_every_use() -> None:
    codec = make_codec()
    token = codec.encode({"sub": "6"}, token_type="access", ttl=TTL, now=at(timedelta(minutes=5)))
    for _ in range(2):
        with pytest.raises(InvalidToken, match="token not yet valid"):
            codec.decode(token, token_type="access")


def test_the_verified_token_memory_is_bounded() -> None:
    from server.kernel.security import tokens

    codec = make_codec()
    issued = [
        codec.encode({"sub": str(i)}, token_type="access", ttl=TTL)
        for i in range(tokens.VERIFIED_CACHE_SIZE + 20)
    ]
    for token in issued:
        codec.decode(token, token_type="access")
    assert len(codec._verified) == tokens.VERIFIED_CACHE_SIZE
    assert codec.decode(issued[0], token_type="access")["sub"] == "0"  # verified again


def test_rotation_old_key_verifies_until_removed() -> None:
    old_token = make_codec(KEY_OLD).encode({"sub": "7"}, token_type="access", ttl=TTL)
    rotated = make_codec(KEY_NEW, KEY_OLD)
    assert rotated.decode(old_token, token_type="access")["sub"] == "7"
    new_token = rotated.encode({"sub": "8"}, token_type="access", ttl=TTL)
    assert jwt.get_unverified_header(new_token)["kid"] == "k2"
    after_removal = make_codec(KEY_NEW)
    assert after_removal.decode(new_token, token_type="access")["sub"] == "8"
    with pytest.raises(InvalidToken, match="unknown key id"):
        after_removal.decode(old_token, token_type="access")


@pytest.mark.parametrize(
    ("keys", "options", "message"),
    [
        pytest.param([SigningKey("k1", "too-short")], {}, "shorter than 32", id="short secret"),
        pytest.param([SigningKey("k1", "x" * 31)], {}, "shorter than 32", id="31 bytes"),
        pytest.param(
            [SigningKey("k1", "x" * 40)], {"algorithm": "HS512"}, "shorter than 64", id="HS512"
        ),
        pytest.param([], {}, "at least one", id="no keys"),
        pytest.param([KEY_OLD, KEY_OLD], {}, "unique", id="duplicate kid"),
        pytest.param([SigningKey("bad kid", KEY_OLD.secret)], {}, "must match", id="bad kid"),
        pytest.param([KEY_OLD], {"algorithm": "RS256"}, "algorithm", id="asymmetric algorithm"),
        pytest.param([KEY_OLD], {"algorithm": "none"}, "algorithm", id="alg none"),
    ],
)
def test_codec_refuses_weak_or_confused_configuration(
    keys: list[SigningKey], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        TokenCodec(keys, issuer=ISSUER, audience=AUDIENCE, **options)


@pytest.mark.parametrize(
    ("claims", "options", "message"),
    [
        pytest.param({}, {}, "sub", id="no sub"),
        pytest.param({"sub": 42}, {}, "sub", id="sub not a string"),
        pytest.param({"sub": "1", "exp": 0}, {}, "exp", id="reserved claim"),
        pytest.param({"sub": "1"}, {"ttl": timedelta(0)}, "ttl", id="zero ttl"),
        pytest.param({"sub": "1"}, {"now": datetime(2030, 1, 1)}, "timezone", id="naive now"),
    ],
)
def test_encode_refuses_tokens_that_could_never_decode(
    claims: dict[str, Any], options: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"token_type": "access", "ttl": TTL} | options
    with pytest.raises(ValueError, match=message):
        make_codec().encode(claims, **arguments)


def test_signing_key_repr_hides_the_secret() -> None:
    assert KEY_OLD.secret not in repr(KEY_OLD)


def test_parse_signing_keys_first_signs_and_whitespace_is_ignored() -> None:
    keys = parse_signing_keys(f" k2:{KEY_NEW.secret} , k1 : {KEY_OLD.secret}", "unused")
    assert keys == [KEY_NEW, KEY_OLD]


def test_parse_signing_keys_derives_k0_from_the_fallback_secret() -> None:
    fallback = "dev-only-secret-key-change-me-in-production"
    (key,) = parse_signing_keys("  ", fallback)
    assert key.kid == "k0"
    assert key.secret != fallback
    assert fallback not in key.secret
    assert parse_signing_keys("", fallback) == [key]
    assert parse_signing_keys("", fallback + "x") != [key]
    codec = make_codec(key)
    token = codec.encode({"sub": "1"}, token_type="access", ttl=TTL)
    assert codec.decode(token, token_type="access")["sub"] == "1"


@pytest.mark.parametrize(
    "spec",
    ["k1", "k1:", ":secret-value", "k1:aaaa,k1:bbbb", "k1:aaaa,,k2:bbbb", "bad kid:secret"],
)
def test_parse_signing_keys_refuses_malformed_specs_without_echoing_secrets(spec: str) -> None:
    with pytest.raises(ValueError, match="signing key") as caught:
        parse_signing_keys(spec, "fallback")
    for secret in ("secret-value", "aaaa", "bbbb"):
        assert secret not in str(caught.value)
