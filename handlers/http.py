"""Reading requests into pydantic models and writing JSON responses.

Bad input never reaches a handler: wrong content type is 415, unparsable JSON is 400
`malformed_json`, a body over MAX_REQUEST_BODY is 413, a body nested deeper than
MAX_JSON_DEPTH is 422 `too_deep` (before anything could store it), and a body or query string
that does not fit its model, or holds a NUL character anywhere, is 422 `validation_error` with
one entry per problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.kernel.cors import policy_key as cors_policy_key
from server.kernel.errors import MalformedJSON, UnsupportedMediaType, ValidationFailed
from server.kernel.jsonutil import MAX_JSON_DEPTH, dumps, is_depth_error, too_deep
from server.kernel.settings import settings_key

M = TypeVar("M", bound=BaseModel)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def validation_details(error: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors without the offending input (it may be a password)."""
    return [
        {
            "loc": [str(part) for part in item["loc"]],
            "message": item["msg"],
            "type": item["type"],
        }
        for item in error.errors(include_url=False, include_input=False)
    ]


def validate(model: type[M], data: Any, where: str, request: web.Request | None = None) -> M:
    """`data` as `model`; with `request`, rules that follow the app's settings apply too
    (handlers/openapi_rules.py FromSettings)."""
    context = {"settings": request.app[settings_key]} if request is not None else None
    try:
        return model.model_validate(data, context=context)
    except ValidationError as error:
        raise ValidationFailed(f"invalid {where}", details=validation_details(error)) from None


async def read_json(request: web.Request) -> Any:
    if request.content_type != JSON:
        raise UnsupportedMediaType(
            f"expected Content-Type {JSON}, got {request.content_type or 'none'}"
        )
    raw = await request.read()  # aiohttp raises 413 past client_max_size
    if not raw:
        raise MalformedJSON("request body is empty; send a JSON document")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        if is_depth_error(error):
            raise _too_deep() from None
        raise MalformedJSON(f"request body is not valid JSON: {error}") from None
    if too_deep(raw, data):
        raise _too_deep()
    if b"\\u0000" in raw:  # JSON can carry NUL only escaped: a cheap test first
        refuse_nul(data, "request body")
    return data


def _too_deep() -> ValidationFailed:
    return ValidationFailed(
        f"request body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep",
        code="too_deep",
    )


def refuse_nul(data: Any, where: str) -> None:
    """422 when a text holds NUL (U+0000), which PostgreSQL cannot store in any text."""
    found = list(_nul_locations(data, []))
    if found:
        raise ValidationFailed(
            f"invalid {where}",
            details=[
                {"loc": loc, "message": "text must not contain NUL (\\u0000)", "type": "nul"}
                for loc in found[:20]
            ],
        )


def _nul_locations(data: Any, path: list[str]) -> Iterator[list[str]]:
    if isinstance(data, str):
        if "\x00" in data:
            yield path
    elif isinstance(data, dict):
        for key, value in data.items():
            if "\x00" in key:
                yield [*path, key.replace("\x00", "\\u0000")]
            yield from _nul_locations(value, [*path, key])
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _nul_locations(value, [*path, str(index)])


async def read_body(request: web.Request, model: type[M], *, form: bool = False) -> M:
    """The body as `model`: JSON, or (when `form`) also a urlencoded form."""
    if form and request.content_type == FORM:
        raw = await request.read()
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
        except (UnicodeDecodeError, ValueError):
            raise MalformedJSON("request body is not a valid urlencoded form") from None
        refuse_nul(dict(pairs), "form")
        return validate(model, dict(pairs), "form", request)
    if form and request.content_type != JSON:
        raise UnsupportedMediaType(
            f"expected Content-Type {JSON} or {FORM}, got {request.content_type or 'none'}"
        )
    return validate(model, await read_json(request), "request body", request)


def read_query(request: web.Request, model: type[M]) -> M:
    data: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        data[key] = values if len(values) > 1 else values[0]
    refuse_nul(data, "query string")
    return validate(model, data, "query string", request)


def read_path(request: web.Request, model: type[M]) -> M:
    refuse_nul(dict(request.match_info), "path")
    return validate(model, dict(request.match_info), "path", request)


def origin_allowed(request: web.Request) -> bool:
    """Browsers send Origin with WebSocket and EventSource requests; a foreign one is
    refused (cross-site WebSocket hijacking). Requests without Origin are not from a page.
    Allowed: the request's own origin, as this server sees it (behind a proxy that
    terminates TLS, list the public origin), and CORS_ALLOWED_ORIGINS, the one list CORS
    uses too (server/kernel/cors.py): origins compared whole (scheme, host, port)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return request.app[cors_policy_key].origins.allows(request, origin)


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    body = dumps(data.model_dump(mode="json") if isinstance(data, BaseModel) else data)
    return web.Response(body=body, status=status, content_type=JSON, headers=headers)
