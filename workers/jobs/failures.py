"""Which job failures no retry can help (the worker dead-letters those at once)."""

from __future__ import annotations

from server.kernel.errors import IntegrityViolation, InvalidData
from workers.jobs.context import PoisonMessage


def never_succeeds(error: Exception) -> str | None:
    """Why no retry can help this message, or None when a later attempt may succeed. A
    constraint the message's data breaks (a user that does not exist, a check) stays broken;
    a unique clash may be a concurrent writer that won, so that one is retried."""
    if isinstance(error, PoisonMessage):
        return str(error)
    if isinstance(error, InvalidData):
        return f"the database refused a value: {error}"
    if isinstance(error, IntegrityViolation) and not error.unique:
        return f"the database refused the message: {error}"
    return None
