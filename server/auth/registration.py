"""Self-registration that does not tell whether an email has an account.

A free email gets a new account; a taken one gets none, and its owner a stored notification
instead (out of band: who tried, when, from which address; no secret). Both do the same
expensive work (the password's hash) and the caller answers both alike (202, one body).
A taken username is still refused (409): usernames are public handles, and the check comes
first, so it answers the same whatever the email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from server.auth.schemas import UserCreate, UserOut
from server.auth.service import AuthService, conflict_from, user_out
from server.kernel.errors import IntegrityViolation
from storage import notifications, users
from storage.db import Connection, Row

NOTICE_TITLE = "security: someone tried to register with your email"
NOTICE_KIND = "security.registration_attempt"


@dataclass(frozen=True)
class Registration:
    """What a registration did; never shown to the caller, who gets the same answer."""

    user: UserOut | None  # the new account; None when the email was taken
    notice: Row | None  # the notification stored for the email's owner, to push


async def register(
    service: AuthService, conn: Connection, *, user_data: UserCreate, address: str
) -> Registration:
    """Create the account, or tell the email's owner that someone tried. Raises 422 for a
    refused password and 409 for a taken username, whatever the email."""
    # A clash aborts the statement, not the transaction: the notice goes in the same one.
    # create_account hashes the password before it inserts: a taken email costs the same.
    await conn.execute("SAVEPOINT registration")
    try:
        row = await service.create_account(conn, user_data)
    except IntegrityViolation as error:
        await conn.execute("ROLLBACK TO SAVEPOINT registration")
        if not (error.unique and "email" in (error.constraint or "")):
            raise conflict_from(error) from None  # a username taken a moment ago
        owner = await users.find_by_login(conn, user_data.email)
        if owner is None:  # the other account went away meanwhile: nothing to tell
            return Registration(None, None)
        return Registration(None, await _tell_owner(conn, owner["id"], address))
    return Registration(user_out(row), None)


async def _tell_owner(conn: Connection, owner_id: int, address: str) -> Row:
    at = datetime.now(UTC).replace(microsecond=0)
    return await notifications.create(
        conn,
        user_id=owner_id,
        channel=None,
        title=NOTICE_TITLE,
        body=(
            f"On {at:%Y-%m-%d %H:%M} UTC, someone at {address} tried to create an account "
            "with your email address. No account was created and nothing of yours changed. "
            "If it was you, sign in with your existing password."
        ),
        level="warning",
        data={"kind": NOTICE_KIND, "at": at.isoformat(), "address": address},
    )
