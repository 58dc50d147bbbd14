"""Field types of the account API whose JSON schema must say more than pydantic's own: what
their validation enforces (special-use email domains, the password policy) or that a PATCH
field may be left out but never be null."""

from __future__ import annotations

from typing import Annotated, Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import EmailStr, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from server.kernel.security.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH


def _any_case(word: str) -> str:
    return "".join(f"[{ch.lower()}{ch.upper()}]" if ch.isalpha() else ch for ch in word)


class _NoSpecialUseDomain:
    """EmailStr (email-validator) refuses the special-use domains of RFC 6761 and the like
    (`.test`, `.local`, `localhost`, ...); the JSON schema's `format: email` does not: say it."""

    PATTERN = "@(?:[^@]*\\.)?(?:{})\\.?$".format(
        "|".join(_any_case(name) for name in SPECIAL_USE_DOMAIN_NAMES)
    )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        result = handler(schema)
        result["not"] = {"pattern": self.PATTERN}
        result["description"] = (
            "An email address; special-use domains ("
            + ", ".join(SPECIAL_USE_DOMAIN_NAMES)
            + ") are refused."
        )
        return result


Email = Annotated[EmailStr, _NoSpecialUseDomain()]


NewPassword = Annotated[
    str,
    Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD_LENGTH,
        description=(
            f"{MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters; also refused (422 "
            "`weak_password`) when it is a common password or the account's own email or "
            "username, which a schema cannot express."
        ),
    ),
]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omittable() -> Any:
    """A PATCH field that may be left out (it stays as it is) but is never null: its type
    admits no null, so the schema says so and validation refuses it; the Python default None
    only means "left out" (read the body with `model_dump(exclude_unset=True)`)."""
    return Field(None, json_schema_extra=_no_default)
