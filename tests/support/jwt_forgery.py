"""Forging access tokens as an attacker (or a confused client) would, for the JWT table in
tests/integration/test_auth_jwt.py.

Every helper starts from the claims of a real token and the server's real signing key, so a
forged token differs from a valid one in exactly the property under test; re-signing the
unchanged claims with `sign` must give a token the server accepts (the table's control).
"""

from __future__ import annotations

import base64
import hmac
import json
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a token, read without checking anything."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def sign(claims: dict[str, Any], secret: str, *, kid: str | None, algorithm: str = "HS256") -> str:
    """A token signed properly with `secret`; no `kid` header when `kid` is None."""
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, secret, algorithm=algorithm, headers=headers)


def hmac_by_hand(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """HMAC-SHA256 over any key bytes (PyJWT refuses PEM keys for HMAC, an attacker won't)."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    signature = hmac.new(key, signing_input.encode(), "sha256").digest()
    return f"{signing_input}.{b64url(signature)}"


def unsigned(claims: dict[str, Any], *, kid: str) -> str:
    """`alg: none` with an empty signature."""
    return f"{_segment({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_segment(claims)}."


def with_payload(token: str, claims: dict[str, Any]) -> str:
    """`token`'s header and signature around a different payload."""
    header, _, signature = token.split(".")
    return f"{header}.{_segment(claims)}.{signature}"


def with_flipped_signature(token: str) -> str:
    """One character in the middle of the signature changed (not the last one, whose low
    bits may be padding)."""
    header, payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


def rsa_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(private_key: rsa.RSAPrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
