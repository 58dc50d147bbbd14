"""Cross-origin requests (CORS) and the one Origin allowlist that WebSockets share.

A page of another origin may call the API, open an event stream and upload files when its
origin is the server's own or one listed in CORS_ALLOWED_ORIGINS (`*`: any). The same list
decides which pages may open a WebSocket (handlers/http.py `origin_allowed`). Origins are
compared whole: scheme, host and port (server/kernel/origins.py).

A small middleware rather than aiohttp-cors: that library wants every route registered with
it (it adds OPTIONS routes, which would then show in every 405's Allow list), answers a
refused preflight in plain text rather than our envelope, and knows nothing of the
server's own origin or of WebSockets; what is needed here is about a hundred lines.

- `preflight_middleware` answers a browser's preflight (OPTIONS with Origin and
  Access-Control-Request-Method) on every URL: 204 with the methods of that URL, the request
  headers the API reads and a Max-Age; a refused origin gets the 403 `origin_not_allowed`
  envelope (it sits inside the error middleware, which renders it).
- `cors_headers` (an `on_response_prepare` hook) gives every response to an allowed origin,
  error envelopes included, `Access-Control-Allow-Origin` and the headers a client may read;
  a refused origin gets none, so its browser keeps the answer from the page.

Credentials in the CORS sense (cookies, HTTP auth, client certificates) are never used: the
API reads Bearer tokens, API keys and single-use tickets, never a cookie. So
`Access-Control-Allow-Credentials` is never sent, and with `*` the answer is the literal
`Access-Control-Allow-Origin: *`, which browsers refuse to a request made with credentials.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import hdrs, web

from server.kernel.errors import Forbidden
from server.kernel.origins import Origins

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Every request header the API reads that is not CORS-safelisted (Content-Type counts: JSON
# is not a "simple" type); traceparent/tracestate carry a browser's trace (W3C Trace Context).
ALLOWED_HEADERS = ", ".join(
    (
        "Authorization",
        "Content-Type",
        "X-API-Key",
        "Last-Event-ID",
        "X-Request-ID",
        "Idempotency-Key",
        "X-Subscription-Token",
        "traceparent",
        "tracestate",
    )
)
# Response headers a page may read besides the safelisted ones (Content-Type, -Length, ...):
# where a new task is (202), when to retry (429, 503), the id to quote in a bug report, how
# to authenticate (401), the methods a URL has (405), a download's file name.
EXPOSED_HEADERS = ", ".join(
    ("Location", "Retry-After", "X-Request-ID", "WWW-Authenticate", "Allow", "Content-Disposition")
)
# Preflight of a URL no route matches: the real request gets its 404 envelope, readable.
ANY_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"


@dataclass(frozen=True, slots=True)
class Policy:
    """CORS_ALLOWED_ORIGINS parsed and CORS_MAX_AGE, held by the app under `policy_key`."""

    origins: Origins
    max_age: int


policy_key: web.AppKey[Policy] = web.AppKey("cors_policy", Policy)


def is_preflight(request: web.Request) -> bool:
    return (
        request.method == hdrs.METH_OPTIONS
        and hdrs.ORIGIN in request.headers
        and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
    )


def _methods(request: web.Request) -> str:
    """The methods of the URL the preflight asks about (OPTIONS itself is never routed)."""
    exc = request.match_info.http_exception
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return ", ".join(sorted(exc.allowed_methods))
    return ANY_METHODS


@web.middleware
async def preflight_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answers preflights; every other request (OPTIONS without Access-Control-Request-Method
    included: its 405 envelope lists the methods) goes on to its handler."""
    if not is_preflight(request):
        return await handler(request)
    policy = request.app[policy_key]
    if not policy.origins.allows(request, request.headers[hdrs.ORIGIN]):
        raise Forbidden(
            "this Origin may not call this API (see CORS_ALLOWED_ORIGINS)",
            code="origin_not_allowed",
        )
    return web.Response(
        status=204,
        headers={
            hdrs.ACCESS_CONTROL_ALLOW_METHODS: _methods(request),
            hdrs.ACCESS_CONTROL_ALLOW_HEADERS: ALLOWED_HEADERS,
            hdrs.ACCESS_CONTROL_MAX_AGE: str(policy.max_age),
        },
    )


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the CORS headers of an allowed origin on every response."""
    policy = request.app.get(policy_key)
    if policy is None or not policy.origins:
        return  # no cross-origin caller allowed: responses never vary by Origin
    _add_vary(response, hdrs.ORIGIN)  # a shared cache must not answer one origin for another
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None or not policy.origins.allows(request, origin):
        return
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = "*" if policy.origins.any else origin
    if not is_preflight(request):
        response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSED_HEADERS


def _add_vary(response: web.StreamResponse, name: str) -> None:
    present = [v.strip().lower() for v in response.headers.get(hdrs.VARY, "").split(",")]
    if name.lower() not in present and "*" not in present:
        vary = response.headers.get(hdrs.VARY)
        response.headers[hdrs.VARY] = f"{vary}, {name}" if vary else name
