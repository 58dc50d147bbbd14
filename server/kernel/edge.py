"""What every response carries at the edge, and the answer to requests aiohttp's parser refuses.

`security_headers` (an `on_response_prepare` hook) drops the `Server` header, which named
Python's and aiohttp's versions, and adds `X-Content-Type-Options: nosniff` and
`Referrer-Policy: no-referrer` to every response the app prepares: JSON, errors, pages,
static files, the WebSocket upgrade and the SSE stream.

A request the HTTP parser refuses (a header over `max_field_size`, a request line over
`max_line_size`, bytes that are not HTTP) never reaches a middleware: aiohttp answers it from
`RequestHandler.handle_error` with a plain-text 400 that echoes the start of the offending
line (a Bearer token, say) and logs it. aiohttp offers no hook for that answer
(https://github.com/aio-libs/aiohttp/issues/3287, open), so `install()` makes aiohttp's
`Server` build `EdgeRequestHandler`, a subclass whose `handle_error` answers the JSON envelope
(431 `header_too_large`, 414 `uri_too_long`, 400 `bad_request`) and logs no request bytes.

The parser never read the request's Origin, so these answers cannot carry the CORS headers
of one origin (server/kernel/cors.py). When any origin is allowed (the app passes
`edge_cors` in its handler_args) they say `Access-Control-Allow-Origin: *`, so a page of an
allowed origin can read why its request was refused; they hold nothing but a fixed message
and a fresh request id, so any other page reading them learns nothing.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from aiohttp import hdrs, web, web_server
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from server.kernel.jsonutil import dumps
from server.kernel.telemetry import request_id_key

log = logging.getLogger(__name__)

# no-referrer rather than strict-origin-when-cross-origin: nothing here reads Referer, and
# some URLs carry a single-use ticket (`/realtime/files/...?ticket=`) that must not leak.
EDGE_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

# On the answers to requests the parser refused, when any cross-origin page is allowed.
EDGE_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "X-Request-ID",
}

# aiohttp's defaults, which RequestHandler applies when the app passes no handler_args.
DEFAULT_LIMIT = 8190


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: runs once per response, after aiohttp set its default headers."""
    response.headers.popall(hdrs.SERVER, None)
    response.headers.update(EDGE_HEADERS)


# PRIVATE-API aiohttp 3.14: StreamResponse._prepare_headers (where aiohttp adds `Server`).
class _BareResponse(web.Response):
    """A response without the `Server` header, for answers built outside the app (where
    `on_response_prepare` does not run): aiohttp adds the header in `_prepare_headers`."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self.headers.popall(hdrs.SERVER, None)


class EdgeRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering its own errors with the JSON envelope."""

    __slots__ = ("_edge_cors", "_edge_field_limit", "_edge_line_limit")

    def __init__(self, manager: Any, **kwargs: Any) -> None:
        cors = bool(kwargs.pop("edge_cors", False))  # ours, not aiohttp's: take it out first
        super().__init__(manager, **kwargs)
        self._edge_cors = cors
        self._edge_field_limit = kwargs.get("max_field_size", DEFAULT_LIMIT)
        self._edge_line_limit = kwargs.get("max_line_size", DEFAULT_LIMIT)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            # A failure of the app outside the error middleware (a timeout, a crash while
            # streaming): aiohttp's own logging and checks, then the envelope.
            plain = super().handle_error(request, status, exc, message)
            code = "internal_error" if plain.status == 500 else "http_error"
            text = "internal server error" if plain.status == 500 else str(plain.reason)
            return _envelope(
                plain.status, code, text, request.get(request_id_key), cors=self._edge_cors
            )
        if request.writer.output_size > 0:  # as aiohttp: the answer has begun, cannot replace it
            raise ConnectionError("response already started; cannot send the parse error")
        status, code, text = self._describe(exc)
        # The exception's message quotes the refused bytes: log only what kind it was.
        level = logging.DEBUG if isinstance(exc, BadHttpMethod) else logging.INFO
        log.log(
            level, "refused a request from %s: %s (%s)", request.remote, code, type(exc).__name__
        )
        return _envelope(status, code, text, cors=self._edge_cors)

    def _describe(self, exc: HttpProcessingError) -> tuple[int, str, str]:
        if isinstance(exc, LineTooLong):
            limit = exc.args[1] if len(exc.args) > 1 else None
            if limit == self._edge_field_limit:
                return 431, "header_too_large", f"a request header is larger than {limit} bytes"
            if limit == self._edge_line_limit:
                return 414, "uri_too_long", f"the request line is longer than {limit} bytes"
        status = exc.code if 400 <= exc.code < 500 else 400
        return status, "bad_request", "the request is not valid HTTP"


def _envelope(
    status: int, code: str, message: str, request_id: str | None = None, *, cors: bool = False
) -> web.Response:
    """The envelope of server.kernel.errors; a fresh request id when no middleware gave one."""
    request_id = request_id or uuid.uuid4().hex
    body = {"error": {"code": code, "message": message, "request_id": request_id}}
    headers = {"X-Request-ID": request_id, **EDGE_HEADERS}
    if cors:
        headers.update(EDGE_CORS_HEADERS)
    response = _BareResponse(
        body=dumps(body), status=status, content_type="application/json", headers=headers
    )
    response.force_close()
    return response


def install() -> None:
    """Make aiohttp's Server build EdgeRequestHandler (process-wide, idempotent)."""
    # PRIVATE-API aiohttp 3.14: the module global web_server.RequestHandler, and
    # RequestHandler.handle_error's signature (aio-libs/aiohttp#3287 asks for a hook).
    # Server.__call__ builds the class this module global names.
    web_server.RequestHandler = EdgeRequestHandler  # type: ignore[attr-defined]
