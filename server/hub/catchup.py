"""Catching a live subscriber up after the node's Redis pub/sub link was down: what the
channel's history still holds after the subscriber's last delivered position, and where a
`gap` must say delivery resumes when some of it is gone (docs/PROTOCOL.md, `gap`)."""

from __future__ import annotations

from server.hub import wire
from server.hub.delivery import Delivery
from server.hub.history import History
from server.hub.position import Position
from server.hub.protocol import now_ms


async def catch_up(
    history: History, channel: str, since: Position
) -> tuple[Position | None, list[Delivery]]:
    """(None, the publications after `since`) when the history holds them all. Otherwise
    (the gap's position, the publications after it): the gap ends right before the oldest
    publication the history still holds after `since` (in a new epoch, after Redis lost its
    data, usually its first), so a publication still in the history is never skipped."""
    recovery = await history.recover(channel, since)
    if recovery.recovered:
        return None, recovery.replay
    now = recovery.position
    # recover() refuses more than the history's size; the stream may hold more (MAXLEN ~).
    same_epoch = since.epoch == now.epoch and since.offset <= now.offset
    after = since.offset if same_epoch else 0
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await history.redis.xrange(  # type: ignore[assignment]
        history.keys(channel)[2], min=f"(0-{after}", max=f"0-{now.offset}"
    )
    oldest_allowed = now_ms() - history.ttl_ms
    held: list[Delivery] = []  # the newest unbroken run of publications still kept
    for entry_id, fields in entries:
        delivery, published_at = wire.parse_entry(now.epoch, entry_id, fields)
        if published_at < oldest_allowed:
            continue  # expired by age: gone like a trimmed one
        if held and delivery.offset != held[-1].offset + 1:
            held = []
        held.append(delivery)
    if not held or held[-1].offset != now.offset:
        return now, []
    start = Position(now.epoch, held[0].offset - 1)
    if same_epoch and start.offset == since.offset:
        return None, held  # nothing missing after all
    return start, held
