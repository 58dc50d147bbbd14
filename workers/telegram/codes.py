"""One-time link codes: random, short enough to type, safe in a t.me `?start=` deep link,
read case-insensitively; only their SHA-256 is ever stored."""

from __future__ import annotations

import hashlib
import secrets

# No 0/O or 1/I/L: the code may be read off a screen and typed.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 10  # 31**10: about 50 bits, for a code that lives minutes and is spent once


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalize(text: str) -> str:
    """What the user typed, as the code it stands for (spaces, dashes and case ignored)."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


def code_hash(code: str) -> str:
    return hashlib.sha256(normalize(code).encode()).hexdigest()
