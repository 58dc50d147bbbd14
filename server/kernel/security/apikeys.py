"""API keys that secret scanners can recognise when leaked, and the other bearer secrets we
store only as hashes: single-use tickets and refresh tokens.

A key reads `rtk_<43 base62 chars = 256 random bits>_<6 base62 chars: CRC32 of the random
part>`. The checksum lets `parse_api_key` turn away typos and garbage without a database
round trip; the first 12 random characters are the lookup id stored in clear to find the
row, and the row keeps only the SHA-256 of the whole key. Plain SHA-256 is enough here (no
slow hash needed): these secrets carry 256 random bits, not a human's choice.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass, field

BASE62_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 43  # 62**43 > 2**256
CHECKSUM_LENGTH = 6  # 62**6 > 2**32
LOOKUP_ID_LENGTH = 12
DEFAULT_PREFIX = "rtk"
PREFIX_PATTERN = re.compile(r"[a-z]{2,10}")
_KEY_BODY = (  # after the prefix; [0-9A-Za-z] matches ASCII only
    rf"_(?P<random>[0-9A-Za-z]{{{RANDOM_LENGTH}}})_(?P<checksum>[0-9A-Za-z]{{{CHECKSUM_LENGTH}}})"
)


@dataclass(frozen=True)
class GeneratedKey:
    """A new key: show `key` to its owner once; store `lookup_id` and `secret_hash`."""

    key: str = field(repr=False)
    lookup_id: str
    secret_hash: str


@dataclass(frozen=True)
class ParsedKey:
    """A well-formed key with a valid checksum (not yet known to exist)."""

    key: str = field(repr=False)
    lookup_id: str


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(BASE62_ALPHABET[remainder])
    return "".join(reversed(digits)).rjust(width, BASE62_ALPHABET[0])


def _checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_LENGTH)


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _check_prefix(prefix: str) -> None:
    if not PREFIX_PATTERN.fullmatch(prefix):
        raise ValueError(f"prefix must match {PREFIX_PATTERN.pattern}")


def generate_api_key(prefix: str = DEFAULT_PREFIX) -> GeneratedKey:
    """A fresh random key with its lookup id and the hash to store."""
    _check_prefix(prefix)
    random_part = "".join(secrets.choice(BASE62_ALPHABET) for _ in range(RANDOM_LENGTH))
    key = f"{prefix}_{random_part}_{_checksum(random_part)}"
    return GeneratedKey(key, random_part[:LOOKUP_ID_LENGTH], hash_api_key(key))


def parse_api_key(text: object, *, prefix: str = DEFAULT_PREFIX) -> ParsedKey | None:
    """The key in `text`, or None when it is not shaped like one of ours or its checksum
    is wrong. Safe on any input: wrong types, huge strings and non-ASCII give None."""
    _check_prefix(prefix)
    expected_length = len(prefix) + 1 + RANDOM_LENGTH + 1 + CHECKSUM_LENGTH
    if not isinstance(text, str) or len(text) != expected_length:
        return None
    match = re.fullmatch(re.escape(prefix) + _KEY_BODY, text)
    if match is None:
        return None
    random_part = match["random"]
    if not hmac.compare_digest(_checksum(random_part), match["checksum"]):
        return None
    return ParsedKey(text, random_part[:LOOKUP_ID_LENGTH])


def hash_api_key(key: str) -> str:
    """What the database stores for `key`: SHA-256, hex."""
    return _sha256_hex(key)


def constant_time_equals(a: str, b: str) -> bool:
    """Compare secrets (or their hashes) without leaking where they differ."""
    return hmac.compare_digest(a.encode(), b.encode())


def new_ticket() -> str:
    """A single-use ticket (e.g. to open a WebSocket); store only `hash_ticket` of it."""
    return secrets.token_urlsafe(32)


def hash_ticket(ticket: str) -> str:
    return _sha256_hex(ticket)


def new_refresh_token() -> str:
    """A refresh token; store only `hash_refresh_token` of it."""
    return secrets.token_urlsafe(48)


def hash_refresh_token(token: str) -> str:
    return _sha256_hex(token)
