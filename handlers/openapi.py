"""OpenAPI 3.1 from the routes themselves.

A handler declares its contract once with `@endpoint(...)`; the decorator validates the body,
query and path into the declared models (passing them as `body=`, `query=`, `path=`) and
records the operation, and `build_spec(app)` (handlers/openapi_document.py) turns every
recorded operation into the document served at /openapi.json. What is documented is
therefore exactly what is validated. A route that reads its own request (a stream, an
upgrade, a file) is declared with `validates=False`: recorded only, with its parameters,
request body and responses given as OpenAPI objects.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from handlers.http import JSON, read_body, read_path, read_query
from server.auth.authenticator import authenticator_key
from server.kernel.principal import Access

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ERROR_TEXT = {
    400: "Bad request (malformed JSON or a bad parameter)",
    401: "Not authenticated, or the credentials are invalid",
    403: "Authenticated, but not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body too large",
    415: "Unsupported content type",
    422: "The input does not match the schema",
    429: "Too many requests (see Retry-After)",
    503: "A backing service is unavailable",
}


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any | None = None
    request_id: str | None = None


class ErrorEnvelope(BaseModel):
    """Every error answers this shape."""

    error: ErrorBody


@dataclass(frozen=True)
class Operation:
    summary: str
    tags: tuple[str, ...]
    description: str | None = None
    body: type[BaseModel] | None = None
    form: bool = False
    query: type[BaseModel] | None = None
    path: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    errors: tuple[int, ...] = ()
    auth: Access | None = None
    content_type: str = JSON
    extra_responses: dict[int, str] = field(default_factory=dict)
    validates: bool = True
    parameters: tuple[dict[str, Any], ...] = ()
    request_body: dict[str, Any] | None = None
    responses: dict[int, dict[str, Any]] = field(default_factory=dict)


def endpoint(
    *,
    summary: str,
    tags: Iterable[str],
    body: type[BaseModel] | None = None,
    form: bool = False,
    query: type[BaseModel] | None = None,
    path: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    errors: Iterable[int] = (),
    auth: Access | None = None,
    content_type: str = JSON,
    description: str | None = None,
    extra_responses: dict[int, str] | None = None,
    validates: bool = True,
    parameters: Iterable[dict[str, Any]] = (),
    request_body: dict[str, Any] | None = None,
    responses: dict[int, dict[str, Any]] | None = None,
) -> Callable[[Callable[..., Awaitable[web.StreamResponse]]], Handler]:
    """`validates=False`: the handler authenticates and reads its request itself; `auth`
    and the rest only document it. `parameters`, `request_body` and `responses` are OpenAPI
    objects added as they are (for what no model describes: multipart, streams)."""
    operation = Operation(
        summary=summary,
        tags=tuple(tags),
        description=description,
        body=body,
        form=form,
        query=query,
        path=path,
        response=response,
        status=status,
        errors=tuple(errors),
        auth=auth,
        content_type=content_type,
        extra_responses=extra_responses or {},
        validates=validates,
        parameters=tuple(parameters),
        request_body=request_body,
        responses=responses or {},
    )

    def decorate(handler: Callable[..., Awaitable[web.StreamResponse]]) -> Handler:
        if not validates:
            handler.__operation__ = operation  # type: ignore[attr-defined]
            return handler

        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            kwargs: dict[str, Any] = {}
            if operation.auth is not None:  # before reading input: strangers get 401, not 422
                kwargs["principal"] = await request.app[authenticator_key].authenticate(
                    request, operation.auth
                )
            if operation.path is not None:
                kwargs["path"] = read_path(request, operation.path)
            if operation.query is not None:
                kwargs["query"] = read_query(request, operation.query)
            if operation.body is not None:
                kwargs["body"] = await read_body(request, operation.body, form=operation.form)
            return await handler(request, **kwargs)

        wrapper.__operation__ = operation  # type: ignore[attr-defined]
        return wrapper

    return decorate


def operation_of(handler: Any) -> Operation | None:
    return getattr(handler, "__operation__", None)


openapi_cache_key: web.AppKey[dict[str, object]] = web.AppKey("openapi_cache", dict[str, object])
