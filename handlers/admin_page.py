"""GET /admin: the admin dashboard, a static page of server/static/admin/ on the TypeScript
SDK's committed build (/static/sdk/), with the test pages' strict CSP. The page itself is
public (it holds nothing); everything it shows comes from /admin/api/... and the admin-only
channel `admin:dashboard`, after logging in as an admin."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

import server
from handlers.pages import CSP

PAGE = Path(server.__file__).resolve().parent / "static" / "admin" / "index.html"


async def dashboard(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        PAGE,
        headers={
            "Content-Security-Policy": CSP,
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-store",
        },
    )
