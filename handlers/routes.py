"""Every URL of the application, top to bottom."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

import server
from handlers import (
    admin_actions,
    admin_dead_letters,
    admin_overview,
    admin_page,
    asyncapi,
    auth,
    docs,
    health,
    messaging,
    messaging_batch,
    metrics,
    notifications,
    pages,
    private_channels,
    realtime_files,
    realtime_rest,
    realtime_sse,
    realtime_ws,
    root,
    tasks,
    telegram,
    users,
    webrtc,
)
from server.kernel.settings import settings_key

STATIC = Path(server.__file__).resolve().parent / "static"


def setup_routes(app: web.Application) -> None:
    settings = app[settings_key]
    router = app.router
    router.add_get("/", root.app_info)
    router.add_get("/health/live", health.live)
    router.add_get("/health/ready", health.ready)

    router.add_post("/auth/register", auth.register)
    router.add_post("/auth/login", auth.login)
    router.add_post("/auth/refresh", auth.refresh)
    router.add_post("/auth/logout", auth.logout)
    router.add_post("/auth/logout-all", auth.logout_all)
    router.add_get("/auth/sessions", auth.list_sessions)
    router.add_delete("/auth/sessions/{session_id}", auth.end_session)
    router.add_post("/auth/ws-ticket", auth.ws_ticket)
    router.add_post("/auth/api-keys", auth.create_api_key)
    router.add_get("/auth/api-keys", auth.list_api_keys)
    router.add_delete("/auth/api-keys/{key_id}", auth.delete_api_key)

    router.add_get("/users/me", users.get_me)
    router.add_patch("/users/me", users.update_me)
    router.add_post("/users/me/password", users.change_password)
    router.add_delete("/users/me", users.delete_me)
    router.add_get("/users/me/notifications", notifications.list_mine)
    router.add_post("/users/me/notifications/{notification_id}/read", notifications.mark_read)
    router.add_post("/users/me/telegram-link", telegram.create_link)
    router.add_delete("/users/me/telegram-link", telegram.delete_link)
    router.add_get("/users", users.list_users)
    router.add_post("/users", users.create_user)
    router.add_get("/users/{user_id}", users.get_user)
    router.add_patch("/users/{user_id}", users.update_user)
    router.add_delete("/users/{user_id}", users.delete_user)

    if settings.WEBSOCKET_ENABLED:
        router.add_get("/realtime/ws", realtime_ws.websocket, allow_head=False)
        if settings.WEBRTC_ENABLED:
            router.add_get("/realtime/webrtc/signaling", realtime_ws.websocket, allow_head=False)
            router.add_post("/realtime/webrtc/rooms", webrtc.create_room)
            router.add_get("/realtime/webrtc/rooms", webrtc.list_rooms)
            router.add_get("/realtime/webrtc/rooms/{room_id}", webrtc.get_room)
            router.add_delete("/realtime/webrtc/rooms/{room_id}", webrtc.delete_room)
            router.add_post("/realtime/webrtc/offer", webrtc.offer)
            router.add_get("/realtime/webrtc/peers", webrtc.list_peers)
            router.add_get("/realtime/webrtc/ice-servers", webrtc.ice_servers)
            router.add_get("/realtime/webrtc/test", pages.webrtc_test)
    if settings.SSE_ENABLED:
        router.add_get("/realtime/events", realtime_sse.events, allow_head=False)
    router.add_get("/realtime/test", pages.realtime_test)
    router.add_get("/realtime/sse-test", pages.sse_test)
    router.add_post("/realtime/send", realtime_rest.send)
    router.add_post("/realtime/broadcast", realtime_rest.broadcast)
    router.add_post("/realtime/notifications/send", realtime_rest.send_notification)
    router.add_get("/realtime/channels/{name}/presence", realtime_rest.presence)
    router.add_get("/realtime/stats", realtime_rest.stats)
    router.add_post("/realtime/binary/upload", realtime_files.upload)
    router.add_get("/realtime/files/{file_id}", realtime_files.download)
    router.add_post("/realtime/private-channels", private_channels.create_channel)
    router.add_get("/realtime/private-channels", private_channels.list_channels)
    router.add_delete("/realtime/private-channels/{name}", private_channels.delete_channel)
    router.add_get("/realtime/private-channels/{name}/members", private_channels.list_members)
    members = "/realtime/private-channels/{name}/members/{user_id}"
    router.add_put(members, private_channels.add_member)
    router.add_delete(members, private_channels.remove_member)

    router.add_post("/messaging/user-notification", messaging.user_notification)
    router.add_post("/messaging/admin-notification", messaging.admin_notification)
    router.add_post("/messaging/order-processing", messaging.order_processing)
    router.add_post("/messaging/system-event", messaging.system_event)
    router.add_post("/messaging/batch", messaging_batch.send_batch)
    router.add_get("/messaging/health", messaging.health)

    router.add_get("/admin", admin_page.dashboard)
    router.add_get("/admin/api/overview", admin_overview.overview)
    router.add_get("/admin/api/dead-letters", admin_dead_letters.list_dead_letters)
    router.add_get(
        "/admin/api/dead-letters/messages/{message_id}", admin_dead_letters.show_dead_letter
    )
    router.add_post("/admin/api/dead-letters/requeue", admin_dead_letters.requeue_dead_letters)
    router.add_post("/admin/api/dead-letters/purge", admin_dead_letters.purge_dead_letters)
    router.add_post("/admin/api/users/{user_id}/disconnect", admin_actions.disconnect_user)
    router.add_get("/admin/api/users/{user_id}/sessions", admin_actions.list_user_sessions)
    router.add_post("/admin/api/sessions/{session_id}/revoke", admin_actions.revoke_session)
    if settings.WEBSOCKET_ENABLED and settings.WEBRTC_ENABLED:
        router.add_delete("/admin/api/rooms/{room_id}", admin_actions.close_room)

    router.add_post("/tasks/example", tasks.create_example)
    # `example` is POST /tasks/example's, never a task id (else OPTIONS and 405 on it would
    # offer GET): the id's pattern leaves it out.
    router.add_get("/tasks/{task_id:(?!example$)[^/]+}", tasks.get_task)

    if settings.METRICS_ENABLED:
        router.add_get("/metrics", metrics.metrics)
    if settings.DOCS_ENABLED:
        router.add_get("/openapi.json", docs.openapi_json)
        router.add_get("/asyncapi.json", asyncapi.asyncapi_json)
        router.add_get("/docs", docs.swagger_ui)
        router.add_get("/redoc", docs.redoc)
    router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
