"""The account API's models. Input models forbid unknown fields, so a typo is an error
rather than silently ignored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from server.auth.fields import Email, NewPassword, omittable
from server.kernel.principal import SCOPES, Role
from server.kernel.security.passwords import MAX_PASSWORD_LENGTH

Username = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{3,32}$", strip_whitespace=True)
]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
FullName = Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)]
Scope = Literal["read", "write", "admin", "messaging", "realtime"]
assert set(SCOPES) == set(Scope.__args__)  # type: ignore[attr-defined]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(Input):
    """Registration (the seed's model): the two passwords must match."""

    email: Email
    username: Username
    password: NewPassword
    password_confirm: Password = Field(description="The same text as `password`.")
    full_name: FullName | None = None

    @model_validator(mode="after")
    def _passwords_match(self) -> Self:
        if self.password != self.password_confirm:
            raise ValueError("password and password_confirm differ")
        return self


class UserOut(BaseModel):
    id: int
    email: str
    username: str
    full_name: str | None = None
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None = None


REGISTRATION_ACCEPTED: Final = "registration accepted; sign in with the credentials you chose"


class RegistrationAccepted(BaseModel):
    """The one answer to every registration that passes validation, whether its email was
    free or already had an account (whose owner is told out of band): nothing in it says
    which, so registering cannot be used to find out who has an account."""

    detail: Literal["registration accepted; sign in with the credentials you chose"] = (
        REGISTRATION_ACCEPTED
    )


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


class LoginResult(BaseModel):
    """`user` and `tokens` (the seed's shape); the OAuth2 fields are repeated at the top
    level so that standard OAuth2 password-flow clients (Swagger UI's Authorize) work."""

    user: UserOut
    tokens: TokenPair
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class LoginIn(Input):
    """Log in with an email or a username (the OAuth2 form's `username` may hold either)."""

    model_config = ConfigDict(
        extra="ignore",  # the OAuth2 form also sends grant_type, scope
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["email"],
                    "properties": {"email": {"type": "string", "minLength": 1}},
                },
                {
                    "required": ["username"],
                    "properties": {"username": {"type": "string", "minLength": 1}},
                },
            ]
        },
    )
    email: str | None = Field(None, max_length=320)
    username: str | None = Field(None, max_length=320)
    password: Password

    @model_validator(mode="after")
    def _one_identifier(self) -> Self:
        if not (self.email or self.username):
            raise ValueError("send email or username")
        return self

    @property
    def login(self) -> str:
        return (self.email or self.username or "").strip()


class RefreshIn(Input):
    refresh_token: str = Field(min_length=1, max_length=512)


class SessionSummary(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip: str | None


class SessionOut(SessionSummary):
    current: bool


class SessionPath(Input):
    session_id: uuid.UUID


class TicketOut(BaseModel):
    ticket: str
    expires_in: int


class ApiKeyCreate(Input):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] | None = Field(
        None, description="Defaults to read and write. `admin` needs an admin owner."
    )
    expires_at: datetime | None = Field(
        None,
        description=(
            "With a timezone, and in the future (a time already past is refused with 422; "
            "a schema cannot compare with the present)."
        ),
    )

    @model_validator(mode="after")
    def _future_expiry(self) -> Self:
        if self.expires_at is not None:
            if self.expires_at.tzinfo is None:
                raise ValueError("expires_at needs a timezone (e.g. 2030-01-01T00:00:00Z)")
            if self.expires_at <= datetime.now(UTC):
                raise ValueError("expires_at must be in the future")
        return self


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="Shown once. Send it as `X-API-Key` or `Authorization: Bearer`.")


class ApiKeyPath(Input):
    key_id: uuid.UUID


class PartialUpdate(Input):
    """A PATCH body: a field left out stays as it is; only nullable fields take null."""


class UserUpdateSelf(PartialUpdate):
    email: Email = omittable()
    username: Username = omittable()
    full_name: FullName | None = None


class PasswordChange(Input):
    current_password: Password
    new_password: NewPassword


class AccountDelete(Input):
    password: Password


class AdminUserCreate(Input):
    email: Email
    username: Username
    password: NewPassword
    full_name: FullName | None = None
    role: Role = Role.user
    is_active: bool = True


class AdminUserUpdate(PartialUpdate):
    email: Email = omittable()
    username: Username = omittable()
    full_name: FullName | None = None
    role: Role = omittable()
    is_active: bool = omittable()


class UserPath(Input):
    user_id: int = Field(ge=1, le=2**63 - 1)


class UserListQuery(Input):
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(20, ge=1, le=100)
    role: Role | None = None
    is_active: bool | None = None
    q: str | None = Field(None, max_length=100, description="Matches email, username, name.")


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    page: int
    per_page: int
