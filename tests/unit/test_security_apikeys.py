"""API keys, tickets and refresh tokens: the key format, checksum rejection of any one
changed character, and parse_api_key turning away anything that is not a key."""

from __future__ import annotations

import hashlib
import re

import pytest

from server.kernel.security.apikeys import (
    BASE62_ALPHABET,
    ParsedKey,
    constant_time_equals,
    generate_api_key,
    hash_api_key,
    hash_refresh_token,
    hash_ticket,
    new_refresh_token,
    new_ticket,
    parse_api_key,
)

KEY_SHAPE = re.compile(r"rtk_[0-9A-Za-z]{43}_[0-9A-Za-z]{6}")
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def test_generated_key_format_lookup_id_and_hash() -> None:
    generated = generate_api_key()
    assert KEY_SHAPE.fullmatch(generated.key)
    assert generated.lookup_id == generated.key[4:16]
    assert generated.secret_hash == hashlib.sha256(generated.key.encode()).hexdigest()
    assert generated.secret_hash == hash_api_key(generated.key)
    assert generated.key not in repr(generated)


def test_generated_key_parses_back() -> None:
    generated = generate_api_key()
    assert parse_api_key(generated.key) == ParsedKey(generated.key, generated.lookup_id)


def test_keys_are_unique() -> None:
    keys = {generate_api_key().key for _ in range(200)}
    assert len(keys) == 200
    assert len({key[4:16] for key in keys}) == 200


def test_every_single_changed_character_is_rejected() -> None:
    key = generate_api_key().key
    for position, character in enumerate(key):
        replacement = "b" if character == "a" else "a"
        changed = key[:position] + replacement + key[position + 1 :]
        assert parse_api_key(changed) is None, f"change at {position} went unnoticed"


def test_one_flipped_case_in_the_random_part_is_rejected() -> None:
    key = generate_api_key().key
    position = next(i for i, c in enumerate(key[4:47], start=4) if c.isalpha())
    flipped = key[:position] + key[position].swapcase() + key[position + 1 :]
    assert parse_api_key(flipped) is None


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("rtk_", id="prefix only"),
        pytest.param("hello world", id="words"),
        pytest.param("x" * 100_000, id="huge"),
        pytest.param(None, id="None"),
        pytest.param(12345, id="number"),
        pytest.param(b"rtk_bytes", id="bytes"),
    ],
)
def test_garbage_is_not_a_key(text: object) -> None:
    assert parse_api_key(text) is None


def test_near_misses_are_not_keys() -> None:
    key = generate_api_key().key
    near_misses = [
        key + "0",
        key[:-1],
        key * 2,
        key + "\n",
        " " + key,
        "RTK" + key[3:],
        "abc" + key[3:],
        key.replace("_", "-"),
        key[:10] + "\u0663" + key[11:],  # ARABIC-INDIC DIGIT THREE: a digit, but not ASCII
        key[:10] + "\uff21" + key[11:],  # FULLWIDTH A
        key[:10] + "é" + key[11:],
    ]
    for text in near_misses:
        assert parse_api_key(text) is None, repr(text)


def test_other_prefixes() -> None:
    generated = generate_api_key("abc")
    assert generated.key.startswith("abc_")
    assert parse_api_key(generated.key, prefix="abc") is not None
    assert parse_api_key(generated.key) is None
    with pytest.raises(ValueError, match="prefix"):
        generate_api_key("RT_K")


def test_constant_time_equals() -> None:
    assert constant_time_equals("abc", "abc")
    assert not constant_time_equals("abc", "abd")
    assert not constant_time_equals("abc", "abcd")
    assert not constant_time_equals("é", "e")  # non-ASCII compares instead of raising


def test_tickets_and_refresh_tokens_are_random_and_stored_hashed() -> None:
    ticket, refresh_token = new_ticket(), new_refresh_token()
    assert URL_SAFE.fullmatch(ticket)
    assert URL_SAFE.fullmatch(refresh_token)
    assert len(ticket) == 43  # 32 bytes
    assert len(refresh_token) == 64  # 48 bytes
    assert ticket != new_ticket()
    assert refresh_token != new_refresh_token()
    assert hash_ticket(ticket) == hashlib.sha256(ticket.encode()).hexdigest()
    assert hash_refresh_token(refresh_token) == hashlib.sha256(refresh_token.encode()).hexdigest()
    assert hash_ticket(ticket) == hash_ticket(ticket)


def test_alphabet_is_base62() -> None:
    assert len(set(BASE62_ALPHABET)) == 62
    assert BASE62_ALPHABET.isascii()
    assert BASE62_ALPHABET.isalnum()
