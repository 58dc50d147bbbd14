"""The security package as shipped: its submodules import and the common-password list
is packaged, loads, and holds the classics (and not the seed's example password)."""

from __future__ import annotations

import importlib

import pytest

import server.kernel.security
from server.kernel.security.passwords import load_common_passwords

CLASSICS = [
    "password", "123456", "12345678", "qwerty", "letmein", "iloveyou", "password1",
    "password123!", "admin", "welcome", "monkey", "dragon", "abc123", "trustno1",
    "1qaz2wsx", "passw0rd", "sunshine", "football",
]  # fmt: skip


@pytest.mark.parametrize("submodule", ["passwords", "tokens", "apikeys"])
def test_every_submodule_is_documented_and_imports(submodule: str) -> None:
    assert submodule in (server.kernel.security.__doc__ or "").split()
    module = importlib.import_module(f"server.kernel.security.{submodule}")
    assert module.__doc__


@pytest.fixture(scope="module")
def common_passwords() -> frozenset[str]:
    return load_common_passwords()


def test_common_password_list_is_shipped_and_normalised(common_passwords: frozenset[str]) -> None:
    common = common_passwords
    assert len(common) >= 1000
    assert all(entry == entry.strip().casefold() and entry for entry in common)


@pytest.mark.parametrize("password", CLASSICS)
def test_classics_are_listed(common_passwords: frozenset[str], password: str) -> None:
    assert password in common_passwords


def test_seed_example_password_is_not_listed(common_passwords: frozenset[str]) -> None:
    assert "securepass123!" not in common_passwords
