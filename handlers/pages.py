"""The test pages, served by the app itself (no CDN): GET /realtime/test, /realtime/sse-test
and /realtime/webrtc/test. Each is an example of the TypeScript SDK: an ES module in
server/static/realtime/ importing the SDK's committed build from /static/sdk/ (the
`/static/` route in handlers/routes.py serves both)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

import server

PAGES = Path(server.__file__).resolve().parent / "static" / "realtime"

# Scripts and styles come from this server only; the pages talk to this origin only.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; "
    "frame-ancestors 'none'"
)


def _page(name: str) -> web.FileResponse:
    return web.FileResponse(
        PAGES / name,
        headers={"Content-Security-Policy": CSP, "Content-Type": "text/html; charset=utf-8"},
    )


async def realtime_test(request: web.Request) -> web.StreamResponse:
    """Log in, connect, subscribe, publish, presence, binary messages, and a file upload with
    progress that resumes after a dropped connection."""
    return _page("test.html")


async def webrtc_test(request: web.Request) -> web.StreamResponse:
    """Join a room, send the camera to the server and see it come back, chat over a data
    channel, see the other members and call them."""
    return _page("webrtc-test.html")


async def sse_test(request: web.Request) -> web.StreamResponse:
    """A live event log with resume (Last-Event-ID), gaps and the server ending the stream."""
    return _page("sse-test.html")
