"""Every URL of the application, top to bottom."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

import server
from handlers import docs, health, metrics, root, tasks
from server import keys

STATIC = Path(server.__file__).resolve().parent / "static"


def setup_routes(app: web.Application) -> None:
    settings = app[keys.settings]
    router = app.router
    router.add_get("/", root.app_info)
    router.add_get("/health/live", health.live)
    router.add_get("/health/ready", health.ready)

    router.add_post("/tasks/example", tasks.create_example)
    router.add_get("/tasks/{task_id}", tasks.get_task)

    if settings.METRICS_ENABLED:
        router.add_get("/metrics", metrics.metrics)
    if settings.DOCS_ENABLED:
        router.add_get("/openapi.json", docs.openapi_json)
        router.add_get("/docs", docs.swagger_ui)
        router.add_get("/redoc", docs.redoc)
    router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
