"""What the OpenAPI document adds to the models' own JSON schemas, so that it states every
rule the server enforces: limits taken from the app's settings (`FromSettings` fields), and
the rules every request passes through in handlers/http.py (no NUL character in any text,
JSON values nested at most MAX_JSON_DEPTH levels)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from server.kernel.jsonutil import MAX_JSON_DEPTH
from server.kernel.settings import Settings

NUL_FREE = "^[^\\u0000]*$"
SETTINGS_MARK = "x-from-settings"

# Any JSON value the server accepts in a request: text without NUL, keys without NUL.
JSON_VALUE = {
    "description": (
        f"Any JSON value nested at most {MAX_JSON_DEPTH} levels deep; no text (value or key) "
        "may contain NUL (U+0000)."
    ),
    "anyOf": [
        {"type": "string", "pattern": NUL_FREE},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
        {
            "type": "object",
            "propertyNames": {"pattern": NUL_FREE},
            "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
        },
    ],
}

# Keywords that already say what a value is: such a schema is not "any value".
_SHAPED = {"type", "$ref", "anyOf", "oneOf", "allOf", "not", "enum", "const", "properties"}


@dataclass(frozen=True)
class FromSettings:
    """A field constraint that depends on the app's settings: `schema(settings)` is what the
    document says, `check(value, settings)` (optional) what validation enforces. Both come
    from one declaration; validation needs `{"settings": ...}` in its context (handlers/http.py
    passes the app's)."""

    name: str
    schema: Callable[[Settings], dict[str, Any]]
    check: Callable[[Any, Settings], None] | None = None
    rules: ClassVar[dict[str, FromSettings]] = {}

    def __post_init__(self) -> None:
        FromSettings.rules[self.name] = self

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        inner = handler(source)
        check = self.check
        if check is None:
            return inner

        def validate(value: Any, info: core_schema.ValidationInfo) -> Any:
            settings = (info.context or {}).get("settings")
            if not isinstance(settings, Settings):
                raise RuntimeError(f"{self.name}: validate with the settings in the context")
            check(value, settings)
            return value

        return core_schema.with_info_after_validator_function(validate, inner)

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        result = handler(schema)
        result[SETTINGS_MARK] = self.name
        return result


def at_most(setting: str) -> FromSettings:
    """A number no greater than the setting `setting` (answered like pydantic's `le`)."""

    def check(value: Any, settings: Settings) -> None:
        limit = getattr(settings, setting)
        if value > limit:
            raise PydanticCustomError(
                "less_than_equal",
                "Input should be less than or equal to {le} (" + setting + ")",
                {"le": limit},
            )

    return FromSettings(
        f"at_most_{setting}",
        lambda settings: {"maximum": getattr(settings, setting)},
        check,
    )


def complete(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The document with settings filled in and the edge's rules stated on every schema."""
    schemas = document["components"]["schemas"]
    for schema in schemas.values():
        _state_rules(schema, settings)
    schemas["JsonValue"] = dict(JSON_VALUE)
    for path_item in document["paths"].values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                _state_rules(parameter["schema"], settings)
            for media in operation.get("requestBody", {}).get("content", {}).values():
                _state_rules(media.get("schema", {}), settings)
    return document


def _state_rules(schema: Any, settings: Settings) -> None:
    """In place: settings marks resolved, NUL refused in every text, "any value" made
    JsonValue (whose texts are NUL-free too)."""
    if isinstance(schema, list):
        for item in schema:
            _state_rules(item, settings)
        return
    if not isinstance(schema, dict):
        return
    mark = schema.pop(SETTINGS_MARK, None)
    if mark is not None:
        schema.update(FromSettings.rules[mark].schema(settings))
    if schema.get("type") == "string" and not ({"format", "enum", "const"} & set(schema)):
        pattern = schema.get("pattern")
        if pattern is None:
            schema["pattern"] = NUL_FREE
        elif not (pattern.startswith("^") and pattern.endswith("$")):
            # A whole-string pattern of our own lists what it allows (never NUL); an open
            # one (`^v=0`) allows anything after it, so NUL is refused beside it.
            schema.setdefault("allOf", []).append({"pattern": NUL_FREE})
    if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
        # A model that ignores unknown fields still receives them (and a dict any key): the
        # edge refuses NUL in them too.
        if "properties" in schema and schema.get("additionalProperties", True) is True:
            schema["additionalProperties"] = {"$ref": "#/components/schemas/JsonValue"}
        schema.setdefault("propertyNames", {"pattern": NUL_FREE})
    if isinstance(schema.get("anyOf"), list):
        _decimal(schema["anyOf"])
    for key, value in list(schema.items()):
        if key in ("properties", "$defs", "patternProperties"):
            for name, sub in value.items():
                if isinstance(sub, dict) and not (_SHAPED & set(sub)):
                    value[name] = {"$ref": "#/components/schemas/JsonValue", **sub}
                else:
                    _state_rules(sub, settings)
        elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf"):  # not "not"
            _state_rules(value, settings)


_DECIMAL = "^(?!^[-+.]*$)[+-]?0*"
_BOUNDED_DECIMAL = re.compile(r"^\^\(\?!\^\[-\+\.\]\*\$\)\[\+-\]\?0\*\(\?:\\d\{0,(\d+)\}\|")


def _decimal(branches: list[Any]) -> None:
    """pydantic's schema of a `Decimal` with limits says less than its validation: the string
    pattern's first alternative is not anchored at the end (any text after the digits
    passes), a sign is allowed when `ge=0` refuses it, and the number branch ignores
    `max_digits` and `decimal_places`. Say what is enforced: an anchored pattern, no minus
    sign under a minimum of 0, and whole numbers within the digits allowed (a float cannot
    promise its decimal places)."""
    strings = [
        b
        for b in branches
        if isinstance(b, dict)
        and b.get("type") == "string"
        and str(b.get("pattern", "")).startswith(_DECIMAL)
    ]
    numbers = [b for b in branches if isinstance(b, dict) and b.get("type") == "number"]
    if len(strings) != 1:
        return
    string = strings[0]
    pattern = string["pattern"]
    digits = _BOUNDED_DECIMAL.match(pattern)
    if digits is not None:
        pattern = pattern.replace("|", "$|", 1)
    if any(b.get("minimum", -1) >= 0 for b in numbers):
        pattern = pattern.replace("[+-]?", "\\+?", 1)
    string["pattern"] = pattern
    if pattern.endswith("\\d*$") and digits is None:
        return  # no limits: any number is fine
    for number in numbers:
        number["type"] = "integer"
        if digits is not None:
            number["maximum"] = 10 ** int(digits.group(1)) - 1
