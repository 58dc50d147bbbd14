"""Password hashing (argon2id through passlib, always off the event loop) and the password
policy: a length range, the shipped common-password list and the user's own identifiers, with
no composition rules (NIST SP 800-63B).

common_passwords.txt is Openwall's public-domain password.lst (Solar Designer, 1996-2011,
most common first), lower-cased, followed by common variants (word + digits/years/"!",
keyboard walks, digit runs).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterable
from importlib import resources

from passlib.context import CryptContext  # type: ignore[import-untyped]  # libpass: no py.typed

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # long passphrases are welcome; argon2's cost does not grow with it
COMMON_PASSWORDS_PACKAGE = "server.kernel.security"
COMMON_PASSWORDS_FILE = "common_passwords.txt"

# OWASP Password Storage Cheat Sheet, argon2id minimum: m=19 MiB, t=2, p=1.
OWASP_MEMORY_COST_KIB = 19456
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1


def load_common_passwords() -> frozenset[str]:
    """The shipped list, case-folded; read from the package so it works from a wheel too."""
    shipped = resources.files(COMMON_PASSWORDS_PACKAGE).joinpath(COMMON_PASSWORDS_FILE)
    text = shipped.read_text(encoding="utf-8")
    return frozenset(line.strip().casefold() for line in text.splitlines() if line.strip())


class PasswordPolicy:
    """Checks a new password; holds the common-password list it loads once."""

    def __init__(
        self,
        *,
        min_length: int = MIN_PASSWORD_LENGTH,
        max_length: int = MAX_PASSWORD_LENGTH,
        common_passwords: frozenset[str] | None = None,
    ) -> None:
        if not 1 <= min_length <= max_length:
            raise ValueError("need 1 <= min_length <= max_length")
        self.min_length = min_length
        self.max_length = max_length
        self.common_passwords = (
            load_common_passwords() if common_passwords is None else common_passwords
        )

    def check_policy(self, password: str, *, context_words: Iterable[str] = ()) -> list[str]:
        """Human-readable problems with `password`; empty when it is acceptable.

        `context_words` are the user's own identifiers (email, username): the password may
        not be one of them, ignoring case.
        """
        problems: list[str] = []
        if len(password) < self.min_length:
            problems.append(f"must be at least {self.min_length} characters long")
        if len(password) > self.max_length:
            problems.append(f"must be at most {self.max_length} characters long")
        folded = password.casefold()
        if folded in self.common_passwords:
            problems.append("is too common; choose a less guessable password")
        if any(word and folded == word.casefold() for word in context_words):
            problems.append("must not be your email address or username")
        return problems


class PasswordHasher:
    """argon2id hashes; every hash and verify runs in a worker thread, never on the loop."""

    def __init__(
        self,
        *,
        memory_cost: int = OWASP_MEMORY_COST_KIB,
        time_cost: int = OWASP_TIME_COST,
        parallelism: int = OWASP_PARALLELISM,
    ) -> None:
        if memory_cost < OWASP_MEMORY_COST_KIB or time_cost < OWASP_TIME_COST or parallelism < 1:
            raise ValueError("argon2id parameters below the OWASP minimum (m=19456 KiB, t=2)")
        self.memory_cost = memory_cost
        self.time_cost = time_cost
        self.parallelism = parallelism
        self._context = CryptContext(
            schemes=["argon2"],
            argon2__type="ID",
            argon2__memory_cost=memory_cost,
            argon2__rounds=time_cost,  # passlib's name for argon2's time_cost
            argon2__parallelism=parallelism,
        )
        # Built on first use (in a thread) rather than here, so constructing is instant.
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        """A new argon2id hash of `password` with this hasher's parameters."""
        hashed: str = await asyncio.to_thread(self._context.hash, password)
        return hashed

    async def verify(self, password: str, hashed: str) -> tuple[bool, str | None]:
        """(matches?, replacement hash or None). The replacement is set when `hashed` used
        weaker or other parameters than this hasher: store it to upgrade the user."""
        try:
            valid, new_hash = await asyncio.to_thread(
                self._context.verify_and_update, password, hashed
            )
        except ValueError:  # an unrecognised hash, or a password over passlib's size limit
            log.warning("password check failed: stored hash or password unusable")
            return False, None
        return bool(valid), new_hash

    async def dummy_verify(self, password: str) -> None:
        """Spend what a real verify costs, for a login whose user does not exist, so the
        response time does not tell which accounts exist."""
        if self._dummy_hash is None:
            # Hashing costs the same as verifying, so the first call is not faster either.
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
            return
        await self.verify(password, self._dummy_hash)
