"""Channel cursors (`<epoch>:<offset>`, the position of a publication in its channel's
history): what the clients remember per channel to resume after a reconnect."""

from __future__ import annotations

from typing import Any


def valid_cursor(cursor: str) -> bool:
    epoch, _, offset = cursor.partition(":")
    return bool(epoch) and offset.isdigit()


class ChannelCursors(dict[str, str | None]):
    """Subscribed channel -> the cursor of the last publication yielded on it (None before
    the first)."""

    def fresh(self, publication: dict[str, Any]) -> bool:
        """Move the channel's cursor to `publication`; False when it was yielded before (a
        replay repeats what the client saw before it reconnected)."""
        channel = publication.get("channel")
        if not isinstance(channel, str) or channel not in self:
            return True
        last = self[channel]
        epoch, offset = publication.get("epoch"), publication.get("offset")
        if last and isinstance(offset, int):
            last_epoch, _, last_offset = last.partition(":")
            if last_epoch == epoch and last_offset.isdigit() and offset <= int(last_offset):
                return False
        self[channel] = publication.get("cursor")
        return True
