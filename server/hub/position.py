"""A place in a channel's history: its epoch (the id of the history's lifetime) and offset.

A cursor is the text form, `<epoch>:<offset>`. When a channel's keys expire (idle for
HISTORY_TTL) the epoch changes, so an old cursor can be recognised as unrecoverable.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    epoch: str
    offset: int

    @property
    def cursor(self) -> str:
        return f"{self.epoch}:{self.offset}"


def parse_cursor(cursor: str) -> Position | None:
    """The position a client's cursor names, or None when it is not a cursor."""
    epoch, _, offset = cursor.partition(":")
    if not epoch or len(epoch) > 32 or not offset.isdigit() or len(offset) > 18:
        return None
    return Position(epoch, int(offset))
