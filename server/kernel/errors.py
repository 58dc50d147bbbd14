"""The error tree and the middleware that renders every error as one JSON envelope.

    AppError                      (500 internal_error)
    +-- BadRequest                (400 bad_request)
    |   +-- MalformedJSON         (400 malformed_json)
    +-- Unauthorized              (401 unauthorized)
    +-- Forbidden                 (403 forbidden)
    +-- NotFound                  (404 not_found)
    +-- Conflict                  (409 conflict)
    +-- PayloadTooLarge           (413 payload_too_large)
    +-- UnsupportedMediaType      (415 unsupported_media_type)
    +-- ValidationFailed          (422 validation_error)
    +-- TooManyRequests           (429 rate_limited)
    +-- ServiceUnavailable        (503 service_unavailable)

The data layer's failures, raised by storage (which knows nothing of HTTP):

    DatabaseUnavailable           (rendered 503 database_unavailable, Retry-After)
    IntegrityViolation            (rendered 409 conflict, or 422 when not a uniqueness clash)
    InvalidData                   (a value PostgreSQL refused; its callers decide)

Redis failing under any route (redis.exceptions.RedisError: down, restarting, loading, out
of memory) is rendered 503 service_unavailable with Retry-After, the same as a database
outage: a client retries shortly; a Redis error that is not about reaching Redis (a refused
command) is logged with its traceback all the same, since it may be our bug.

Every error answers `{"error": {"code", "message", "details"?, "request_id"}}`. aiohttp's own
HTTP exceptions (404 for unknown routes, 405, 413) are rendered the same way; any other
exception is logged with the request id and answered as a 500 without internals.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.kernel.jsonutil import dumps
from server.kernel.telemetry import request_id_key

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RETRY_AFTER = {"Retry-After": "1"}  # a backing service is down: a restart takes seconds


class AppError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str = "internal server error",
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}
        if code is not None:
            self.code = code  # type: ignore[misc]  # a narrower code for one instance


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class MalformedJSON(BadRequest):
    code = "malformed_json"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"

    def __init__(self, message: str = "authentication required", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(AppError):
    status = 415
    code = "unsupported_media_type"


class ValidationFailed(AppError):
    status = 422
    code = "validation_error"


class TooManyRequests(AppError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(message, **kwargs)


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"


# Failures of the data layer: storage raises them, the middleware renders them.


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be reached (down, refusing connections or timing out)."""


class InvalidData(Exception):
    """PostgreSQL refused a value (out of range, not valid for its type)."""


class IntegrityViolation(Exception):
    """A constraint refused the statement; `constraint` names it when PostgreSQL said so.
    `unique` tells a clash with existing data from other violations (not null, check)."""

    def __init__(self, message: str, constraint: str | None, *, unique: bool = False) -> None:
        super().__init__(message)
        self.constraint = constraint
        self.unique = unique


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def envelope(
    status: int,
    code: str,
    message: str,
    request_id: str | None,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    body["request_id"] = request_id
    return web.Response(
        body=dumps({"error": body}),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _from_http_exception(exc: web.HTTPException, request_id: str | None) -> web.Response:
    headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        message = f"method {exc.method} is not allowed here; allowed: {allowed}"
    elif exc.status == 404:
        message = "no route matches this URL"
    elif exc.status == 413:
        message = "request body is too large"
    else:
        message = exc.reason
    code = _HTTP_CODES.get(exc.status, "http_error")
    return envelope(exc.status, code, message, request_id, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.get(request_id_key)
    try:
        return await handler(request)
    except AppError as error:
        if error.status >= 500:
            level = logging.INFO if error.status == 503 else logging.ERROR
            log.log(level, "%s: %s", error.code, error.message)
        return envelope(
            error.status, error.code, error.message, request_id, error.details, error.headers
        )
    except DatabaseUnavailable as error:
        log.warning("database unavailable on %s %s: %s", request.method, request.path, error)
        return envelope(
            503,
            "database_unavailable",
            "the database is unavailable",
            request_id,
            headers=RETRY_AFTER,
        )
    except RedisError as error:
        if isinstance(error, (RedisConnectionError, RedisTimeoutError)):
            # INFO, as other 503s: the outage itself is logged once (server/monitor.py)
            log.info("redis unavailable on %s %s: %s", request.method, request.path, error)
        else:  # Redis refused a command: unavailable to the client, maybe a bug of ours
            log.exception("redis error on %s %s", request.method, request.path)
        return envelope(
            503,
            "service_unavailable",
            "Redis is unavailable; retry shortly",
            request_id,
            headers=RETRY_AFTER,
        )
    except IntegrityViolation as error:
        log.info("integrity violation on %s: %s", request.path, error.constraint)
        if error.unique:
            return envelope(409, "conflict", "the change conflicts with existing data", request_id)
        return envelope(422, "validation_error", "the change breaks a rule of the data", request_id)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and 204s pass through untouched
            raise
        return _from_http_exception(exc, request_id)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return envelope(500, "internal_error", "internal server error", request_id)
