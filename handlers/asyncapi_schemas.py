"""The components of the AsyncAPI document: messages made from pydantic models, and their
payload schemas rendered once into components/schemas (pydantic's `$defs` become
`#/components/schemas/...`, names made unique across models by pydantic itself), the way
handlers/openapi.py renders the OpenAPI document's schemas."""

from __future__ import annotations

import inspect
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

REF_TEMPLATE = "#/components/schemas/{model}"
BINARY = "application/octet-stream"


class Components:
    """Collects messages while channels are built, then renders components once."""

    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self._pending: list[tuple[tuple[type[BaseModel], str], dict[str, Any]]] = []

    def schema(self, model: type[BaseModel], mode: str = "serialization") -> dict[str, Any]:
        """A reference to the model's schema, filled in by render()."""
        placeholder: dict[str, Any] = {}
        self._pending.append(((model, mode), placeholder))
        return placeholder

    def message(
        self,
        key: str,
        name: str,
        model: type[BaseModel] | None,
        *,
        mode: str = "serialization",
        description: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        """Add components/messages/`key` (on the wire: `name`, its payload the model's
        schema; a binary message without a model; `fields` for the rest of the message object)
        and return a reference to it."""
        own_doc = model.__dict__.get("__doc__") if model is not None else None  # not inherited
        doc = description or inspect.cleandoc(own_doc or "")
        message: dict[str, Any] = {"name": name, "title": name}
        if doc:
            message["summary"] = doc.split("\n\n", 1)[0].replace("\n", " ")
            if "\n\n" in doc:
                message["description"] = doc
        if model is None:
            message["contentType"] = BINARY
            message["payload"] = {"type": "string", "format": "binary"}
        else:
            message["payload"] = self.schema(model, mode)
        message.update(fields or {})
        self.messages.setdefault(key, message)
        return {"$ref": f"#/components/messages/{key}"}

    def render_schemas(self) -> dict[str, Any]:
        if not self._pending:
            return {}
        keys = list(dict.fromkeys(key for key, _ in self._pending))
        key_map, top = models_json_schema(
            keys,  # type: ignore[arg-type]
            ref_template=REF_TEMPLATE,
        )
        for key, placeholder in self._pending:
            placeholder.update(key_map[key])  # type: ignore[index]
        return dict(sorted(top.get("$defs", {}).items()))
