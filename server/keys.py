"""Every typed key of the application and of a request, in one place.

Resources live on the app under these keys (opened and closed in server/resources.py);
nothing of ours lives in a module global.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import aiopg
    from redis.asyncio import Redis

    from server.auth.authenticator import Authenticator
    from server.auth.service import AuthService
    from server.auth.throttle import LoginThrottle
    from server.health import ServiceMonitor
    from server.hub.hub import Hub
    from server.hub.protocol import MessageTypes
    from server.hub.uploads import Uploads
    from server.metrics import Metrics
    from server.settings import Settings
    from signaling.peers import PeerManager
    from signaling.rooms import RoomService
    from workers.amqp import AmqpConnection
    from workers.messages import Acceptor
    from workers.relay import OutboxRelay

settings: web.AppKey[Settings] = web.AppKey("settings")
db: web.AppKey[aiopg.Pool] = web.AppKey("db")
redis: web.AppKey[Redis] = web.AppKey("redis")
amqp: web.AppKey[AmqpConnection] = web.AppKey("amqp")
relay: web.AppKey[OutboxRelay] = web.AppKey("relay")
acceptor: web.AppKey[Acceptor] = web.AppKey("acceptor")
auth: web.AppKey[Authenticator] = web.AppKey("auth")
auth_service: web.AppKey[AuthService] = web.AppKey("auth_service")
login_throttle: web.AppKey[LoginThrottle] = web.AppKey("login_throttle")
hub: web.AppKey[Hub] = web.AppKey("hub")
uploads: web.AppKey[Uploads] = web.AppKey("uploads")
# The message types WebSocket sessions understand (the hub's, plus WebRTC signaling's).
ws_types: web.AppKey[MessageTypes] = web.AppKey("ws_types")
rooms: web.AppKey[RoomService] = web.AppKey("rooms")
peers: web.AppKey[PeerManager] = web.AppKey("peers")
metrics: web.AppKey[Metrics] = web.AppKey("metrics")
monitor: web.AppKey[ServiceMonitor] = web.AppKey("monitor")
openapi_cache: web.AppKey[dict[str, object]] = web.AppKey("openapi_cache")

request_id: web.RequestKey[str] = web.RequestKey("request_id")
