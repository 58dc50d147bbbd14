"""Forged and broken access tokens against GET /users/me: every case is 401 `invalid_token`
in the error envelope. Each forgery starts from a real token of a live session and the
server's real signing key (app[auth_service].codec.signing_key), so only the one property
under test is wrong; the control case re-signs the unchanged claims and must be accepted."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from server.auth.service import auth_service_key
from server.kernel.security.tokens import SigningKey
from tests.integration.test_http_errors import assert_envelope
from tests.support import jwt_forgery as forge
from tests.support.accounts import Account

Forgery = Callable[[str, dict[str, Any], SigningKey], str]


def resigned(**changes: Any) -> Forgery:
    """The real claims with `changes`, properly signed with the real key."""

    def make(token: str, claims: dict[str, Any], key: SigningKey) -> str:
        return forge.sign({**claims, **changes}, key.secret, kid=key.kid)

    return make


def _now() -> int:
    return int(time.time())


def _rs256(token: str, claims: dict[str, Any], key: SigningKey) -> str:
    return jwt.encode(claims, forge.rsa_private_key(), algorithm="RS256", headers={"kid": key.kid})


def _hmac_keyed_with_a_public_pem(token: str, claims: dict[str, Any], key: SigningKey) -> str:
    pem = forge.public_pem(forge.rsa_private_key())
    return forge.hmac_by_hand({"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims, pem)


def _expired(token: str, claims: dict[str, Any], key: SigningKey) -> str:
    now = _now()
    changes = {"iat": now - 3600, "nbf": now - 3600, "exp": now - 60}
    return forge.sign({**claims, **changes}, key.secret, kid=key.kid)


def _not_yet_valid(token: str, claims: dict[str, Any], key: SigningKey) -> str:
    now = _now()
    return forge.sign({**claims, "nbf": now + 600, "exp": now + 1200}, key.secret, kid=key.kid)


CASES: dict[str, Forgery] = {
    "alg-none": lambda token, claims, key: forge.unsigned(claims, kid=key.kid),
    "rs256": _rs256,
    "hs256-keyed-with-rsa-public-pem": _hmac_keyed_with_a_public_pem,
    "tampered-role-superuser": lambda token, claims, key: forge.with_payload(
        token, {**claims, "role": "superuser"}
    ),
    "tampered-sub": lambda token, claims, key: forge.with_payload(token, {**claims, "sub": "1"}),
    "flipped-signature": lambda token, claims, key: forge.with_flipped_signature(token),
    "wrong-secret": lambda token, claims, key: forge.sign(
        claims, key.secret[::-1] + "x", kid=key.kid
    ),
    "expired": _expired,
    "not-yet-valid": _not_yet_valid,
    "wrong-audience": resigned(aud="some-other-service"),
    "wrong-issuer": resigned(iss="https://attacker.example"),
    "refresh-type": resigned(type="refresh"),
    "missing-type": lambda token, claims, key: forge.sign(
        {k: v for k, v in claims.items() if k != "type"}, key.secret, kid=key.kid
    ),
    "unknown-kid": lambda token, claims, key: forge.sign(claims, key.secret, kid="k-unknown"),
    "missing-kid": lambda token, claims, key: forge.sign(claims, key.secret, kid=None),
    "hs512-with-the-right-secret": lambda token, claims, key: forge.sign(
        claims, key.secret, kid=key.kid, algorithm="HS512"
    ),
}


@pytest.fixture
def signing_key(client: Any) -> SigningKey:
    key: SigningKey = client.app[auth_service_key].codec.signing_key
    return key


async def me_with(client: Any, token: str) -> Any:
    return await client.get("/users/me", headers={"Authorization": f"Bearer {token}"})


async def assert_invalid_token(response: Any) -> None:
    assert response.status == 401, await response.text()
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert_envelope(await response.json(), "invalid_token")


async def test_control_resigned_genuine_claims_are_accepted(
    client: Any, alice: Account, signing_key: SigningKey
) -> None:
    claims = forge.claims_of(alice.access_token)
    token = resigned()(alice.access_token, claims, signing_key)
    assert forge.claims_of(token) == claims
    response = await me_with(client, token)
    assert response.status == 200, await response.text()
    assert (await response.json())["id"] == alice.id


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_forged_token_is_401_invalid_token(
    client: Any, alice: Account, signing_key: SigningKey, case: Forgery
) -> None:
    forged = case(alice.access_token, forge.claims_of(alice.access_token), signing_key)
    await assert_invalid_token(await me_with(client, forged))
    assert (await me_with(client, alice.access_token)).status == 200


async def test_role_claim_is_not_trusted_even_when_signed(
    client: Any, alice: Account, signing_key: SigningKey
) -> None:
    """A token that says superuser (signed with the real key) still acts with the role the
    database holds for the user."""
    claims = forge.claims_of(alice.access_token)
    token = forge.sign({**claims, "role": "superuser"}, signing_key.secret, kid=signing_key.kid)
    me = await me_with(client, token)
    assert me.status == 200
    assert (await me.json())["role"] == "user"
    users = await client.get("/users", headers={"Authorization": f"Bearer {token}"})
    assert users.status == 403
    assert_envelope(await users.json(), "insufficient_role")


async def test_refresh_token_string_is_not_an_access_token(client: Any, alice: Account) -> None:
    await assert_invalid_token(await me_with(client, alice.refresh_token))


@pytest.mark.parametrize(
    "garbage",
    ["garbage", "a.b.c", "..", "eyJhbGciOiJIUzI1NiJ9.e30.", "null", "x" * 4000, "Zm9v.YmFy.YmF6"],
)
async def test_garbage_tokens_are_401(client: Any, garbage: str) -> None:
    await assert_invalid_token(await me_with(client, garbage))


@pytest.mark.parametrize("header", ["Bearer", "Basic YWxpY2U6c2VjcmV0", "Token abc", "bearer"])
async def test_other_authorization_schemes_are_401(client: Any, header: str) -> None:
    await assert_invalid_token(await client.get("/users/me", headers={"Authorization": header}))


async def test_a_token_just_under_the_header_limit_is_401(
    client: Any, alice: Account, signing_key: SigningKey
) -> None:
    claims = forge.claims_of(alice.access_token)
    token = forge.sign({**claims, "pad": "x" * 5500}, signing_key.secret, kid=signing_key.kid)
    assert 7000 < len(token) < 8000
    response = await me_with(client, token)
    assert response.status == 200  # size alone is no reason to refuse a genuine token
    await assert_invalid_token(await me_with(client, forge.with_flipped_signature(token)))


async def test_a_9kb_token_is_401_invalid_token(
    client: Any, alice: Account, signing_key: SigningKey
) -> None:
    claims = forge.claims_of(alice.access_token)
    token = forge.sign({**claims, "pad": "x" * 6800}, signing_key.secret, kid=signing_key.kid)
    assert 9 * 1024 - 300 < len(token) < 9 * 1024 + 300
    await assert_invalid_token(await me_with(client, token))
