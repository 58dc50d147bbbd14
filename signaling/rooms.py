"""Room membership across server nodes, and relaying signals between members.

    {prefix}:room:{<id>}:lease  ZSET peer_id -> lease expiry (ms), renewed by the peer's node
    {prefix}:room:{<id>}:info   HASH peer_id -> {"peer_id", "user_id", "node"}

Joining runs one script that drops expired members, checks capacity and adds the peer, so
two joins racing for the last place cannot both win. A peer's id is its connection's
client_id; messages reach it through the hub's direct channel, on whichever node it is.
A signal is relayed only when sender and receiver are in the same room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.hub.connection import Connection
from server.hub.hub import Hub
from server.kernel.principal import Principal, Role
from server.kernel.realtime_errors import ProtocolError
from server.kernel.settings import Settings
from storage import rooms
from storage.db import Pool, Row, transaction

log = logging.getLogger(__name__)

JOIN_SCRIPT = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
  redis.call('HDEL', KEYS[2], unpack(expired))
end
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then
  return 0
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return -1
end
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[4])
redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) * 2)
return 1
"""


@dataclass
class Membership:
    room_id: uuid.UUID
    room: Row
    connection: Connection


def may_enter(principal: Principal, room: Row) -> bool:
    allowed = room["allowed_user_ids"]
    return (
        allowed is None
        or principal.user_id == room["owner_id"]
        or principal.user_id in allowed
        or principal.is_at_least(Role.admin)
    )


class RoomService:
    def __init__(self, settings: Settings, pool: Pool, redis: Redis, hub: Hub) -> None:
        self.settings = settings
        self.pool = pool
        self.redis = redis
        self.hub = hub
        self.ttl_ms = settings.PRESENCE_TTL * 1000
        self.prefix = settings.REDIS_PREFIX
        self.local: dict[str, Membership] = {}  # client_id -> membership, this node only
        self._join = redis.register_script(JOIN_SCRIPT)

    def _keys(self, room_id: uuid.UUID) -> list[str]:
        base = f"{self.prefix}:room:{{{room_id}}}"
        return [f"{base}:lease", f"{base}:info"]

    # -- membership --------------------------------------------------------------------------

    async def load(self, room_id: uuid.UUID, ref: Any = None) -> Row:
        async with transaction(self.pool) as conn:
            room = await rooms.get(conn, room_id)
        if room is None:
            raise ProtocolError("room_not_found", "no such room", ref)
        return room

    async def join(
        self, connection: Connection, room_id: uuid.UUID, ref: Any = None
    ) -> list[dict[str, Any]]:
        """Enter a room; returns the other participants. Errors: room_not_found,
        room_forbidden, room_full, already_in_room."""
        if connection.client_id in self.local:
            raise ProtocolError("already_in_room", "leave your current room first", ref)
        room = await self.load(room_id, ref)
        if not may_enter(connection.principal, room):
            raise ProtocolError("room_forbidden", "you may not enter this room", ref)
        info = {
            "peer_id": connection.client_id,
            "user_id": connection.user_id,
            "node": self.hub.node_id,
        }
        now = int(time.time() * 1000)
        joined = await self._join(
            keys=self._keys(room_id),
            args=[
                now,
                self.ttl_ms,
                room["max_participants"],
                connection.client_id,
                orjson.dumps(info),
            ],
        )
        if int(joined) == -1:
            raise ProtocolError("room_full", f"the room is full ({room['max_participants']})", ref)
        self.local[connection.client_id] = Membership(room_id, room, connection)
        members = await self.members(room_id)
        others = [m for m in members if m["peer_id"] != connection.client_id]
        frame = {
            "type": "peer-joined",
            "room": str(room_id),
            "peer_id": connection.client_id,
            "user_id": connection.user_id,
        }
        await self._tell(others, frame)
        return others

    async def leave(self, connection: Connection, reason: str = "left") -> uuid.UUID | None:
        membership = self.local.pop(connection.client_id, None)
        if membership is None:
            return None
        lease, info = self._keys(membership.room_id)
        with contextlib.suppress(RedisError, OSError):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(lease, connection.client_id)
                pipe.hdel(info, connection.client_id)
                await pipe.execute()
            members = await self.members(membership.room_id)
            frame = {
                "type": "peer-left",
                "room": str(membership.room_id),
                "peer_id": connection.client_id,
                "user_id": connection.user_id,
                "reason": reason,
            }
            await self._tell(members, frame)
        return membership.room_id

    async def members(self, room_id: uuid.UUID) -> list[dict[str, Any]]:
        lease, info = self._keys(room_id)
        now = int(time.time() * 1000)
        live: list[bytes] = await self.redis.zrangebyscore(lease, now, "+inf")  # type: ignore[assignment]
        if not live:
            return []
        values = await self.redis.hmget(info, live)
        return [orjson.loads(v) for v in values if v is not None]

    async def count(self, room_id: uuid.UUID) -> int:
        lease, _ = self._keys(room_id)
        return int(await self.redis.zcount(lease, int(time.time() * 1000), "+inf"))

    async def is_member(self, room_id: uuid.UUID, peer_id: str) -> bool:
        lease, _ = self._keys(room_id)
        score = await self.redis.zscore(lease, peer_id)
        return score is not None and score > time.time() * 1000

    def room_of(self, connection: Connection) -> Membership | None:
        return self.local.get(connection.client_id)

    # -- relaying ----------------------------------------------------------------------------

    async def relay(self, connection: Connection, to: str, frame: dict[str, Any], ref: Any) -> None:
        """Send a signal to another member of the sender's room."""
        membership = self.local.get(connection.client_id)
        if membership is None:
            raise ProtocolError("not_in_room", "join a room before signaling", ref)
        if to == connection.client_id or not await self.is_member(membership.room_id, to):
            raise ProtocolError("peer_not_in_room", "no such peer in your room", ref)
        out = {
            **frame,
            "from": connection.client_id,
            "from_user": connection.user_id,
            "room": str(membership.room_id),
        }
        await self.hub.send_to_client(to, out, sender_id=None, admin=True)

    async def _tell(self, members: list[dict[str, Any]], frame: dict[str, Any]) -> None:
        for member in members:
            await self.hub.send_to_client(member["peer_id"], frame, sender_id=None, admin=True)

    # -- upkeep ------------------------------------------------------------------------------

    async def maintain(self) -> None:
        """Renew this node's leases so members of a dead node expire, nobody else's."""
        while True:
            await asyncio.sleep(self.settings.PRESENCE_TTL / 3)
            expiry = int(time.time() * 1000) + self.ttl_ms
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for client_id, membership in list(self.local.items()):
                        lease, info = self._keys(membership.room_id)
                        pipe.zadd(lease, {client_id: expiry}, xx=True)
                        pipe.pexpire(lease, self.ttl_ms * 2)
                        pipe.pexpire(info, self.ttl_ms * 2)
                    await pipe.execute()
            except (RedisError, OSError) as error:
                log.debug("room lease renewal skipped: %s", error)


rooms_key: web.AppKey[RoomService] = web.AppKey("rooms", RoomService)
