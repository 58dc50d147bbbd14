"""The OpenAPI 3.1 document (/openapi.json) from the operations `@endpoint` recorded on the
app's routes, completed from the app's settings (handlers/openapi_rules.py), so that it states
every rule the server enforces."""

from __future__ import annotations

import re
import typing
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from handlers.http import FORM, JSON
from handlers.openapi import ERROR_TEXT, ErrorEnvelope, Operation, operation_of
from handlers.openapi_rules import complete
from server import __version__
from server.kernel.settings import settings_key

_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "oauth2": {
        "type": "oauth2",
        "flows": {
            "password": {"tokenUrl": "/auth/login", "refreshUrl": "/auth/refresh", "scopes": {}}
        },
    },
}


class _Schemas:
    """Collects models while operations are built, then renders them once into
    components/schemas and fills in the references handed out meanwhile."""

    def __init__(self) -> None:
        self._pending: list[tuple[tuple[type[BaseModel], str], dict[str, Any]]] = []
        self._extra: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: str) -> dict[str, Any]:
        placeholder: dict[str, Any] = {}
        self._pending.append(((model, mode), placeholder))
        return placeholder

    def inline(self, model: type[BaseModel]) -> dict[str, Any]:
        """A model's own schema (for parameters), its nested models sent to components."""
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in schema.pop("$defs", {}).items():
            self._extra[name] = definition
        return schema

    def render(self) -> dict[str, Any]:
        if not self._pending:
            return dict(self._extra)
        keys = list(dict.fromkeys(key for key, _ in self._pending))
        key_map, top = models_json_schema(
            keys,  # type: ignore[arg-type]
            ref_template="#/components/schemas/{model}",
        )
        for key, placeholder in self._pending:
            placeholder.update(key_map[key])  # type: ignore[index]
        return {**self._extra, **top.get("$defs", {})}


def _response_schema(response: Any, schemas: _Schemas) -> dict[str, Any] | None:
    """A model, a list of a model, or a plain JSON schema dict."""
    if response is None:
        return None
    if isinstance(response, dict):
        return response
    if typing.get_origin(response) is list:
        (item,) = typing.get_args(response)
        return {"type": "array", "items": schemas.ref(item, "serialization")}
    return schemas.ref(response, "serialization")


def _parameters(route_path: str, op: Operation, schemas: _Schemas) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    path_fields = op.path.model_fields if op.path is not None else {}
    for name in _PATH_PARAM.findall(route_path):
        schema: dict[str, Any] = {"type": "string"}
        if name in path_fields and op.path is not None:
            schema = schemas.inline(op.path)["properties"].get(name, schema)
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    if op.query is not None:
        query_schema = schemas.inline(op.query)
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "schema": prop,
                    **({"description": prop["description"]} if "description" in prop else {}),
                }
            )
    return params


def _operation(route_path: str, handler: Any, op: Operation, schemas: _Schemas) -> dict[str, Any]:
    doc = (handler.__doc__ or "").strip()
    result: dict[str, Any] = {
        "summary": op.summary,
        "tags": list(op.tags),
        "operationId": f"{handler.__module__.rsplit('.', 1)[-1]}_{handler.__name__}",
    }
    if op.description or doc:
        result["description"] = op.description or doc
    params = _parameters(route_path, op, schemas) + list(op.parameters)
    if params:
        result["parameters"] = params
    errors = set(op.errors)
    if op.body is not None:
        ref = schemas.ref(op.body, "validation")
        content: dict[str, Any] = {JSON: {"schema": ref}}
        if op.form:
            content[FORM] = {"schema": ref}
        result["requestBody"] = {"required": True, "content": content}
        errors |= {400, 413, 415, 422}
    if op.request_body is not None:
        result["requestBody"] = op.request_body
    if op.query is not None or op.path is not None:
        errors.add(422)
    if op.auth is not None:
        schemes = ["bearer", "oauth2"] + (["apiKey"] if op.auth.api_keys else [])
        result["security"] = ([{}] if op.auth.optional else []) + [{name: []} for name in schemes]
        result["description"] = (
            result.get("description", "") + "\n\n" + op.auth.describe()
        ).strip()
        errors |= {401} if op.auth.optional else {401, 403}
    responses: dict[str, Any] = {}
    schema = _response_schema(op.response, schemas)
    ok: dict[str, Any] = {"description": "Success"}
    if schema is not None:
        ok["content"] = {op.content_type: {"schema": schema}}
    responses[str(op.status)] = ok
    for status, text in op.extra_responses.items():
        responses[str(status)] = {"description": text}
    for status, response in op.responses.items():
        responses[str(status)] = response
    envelope = schemas.ref(ErrorEnvelope, "serialization")
    for status in sorted(errors):
        responses[str(status)] = {
            "description": ERROR_TEXT.get(status, "Error"),
            "content": {JSON: {"schema": envelope}},
        }
    responses["default"] = {
        "description": "Unexpected error",
        "content": {JSON: {"schema": envelope}},
    }
    result["responses"] = responses
    return result


def build_spec(app: web.Application, *, title: str, description: str) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for route in app.router.routes():
        op = operation_of(route.handler)
        if op is None or route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        route_path = info.get("path") or info.get("formatter")
        if not route_path:
            continue
        operation = _operation(route_path, route.handler, op, schemas)
        if operation["operationId"] in used:  # one handler on two routes (the WebSocket)
            operation["operationId"] += "_" + re.sub(r"\W+", "_", route_path).strip("_")
        used.add(operation["operationId"])
        paths.setdefault(route_path, {})[route.method.lower()] = operation
    components = {"schemas": schemas.render(), "securitySchemes": SECURITY_SCHEMES}
    document = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__, "description": description},
        "paths": paths,
        "components": components,
    }
    return complete(document, app[settings_key])
