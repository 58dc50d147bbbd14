"""AuthService: accounts and sessions in the database, nothing else (no Redis, no HTTP), so
the seed's calls work from any script with a connection:

    async with transaction(pool) as conn:
        user = await AuthService().register_user(conn, user_data=UserCreate(...))
        result = await AuthService().login(conn, email="ann@example.org", password="...")

Errors are the server's error tree (server/kernel/errors.py): 401 for bad credentials and tokens,
409 for taken names, 422 for refused passwords. Callers that hold caches (the
Authenticator) are told which sessions a call revoked through the return values.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from server.auth.schemas import LoginResult, TokenPair, UserCreate, UserOut
from server.kernel.errors import (
    AppError,
    Conflict,
    Forbidden,
    IntegrityViolation,
    Unauthorized,
    ValidationFailed,
)
from server.kernel.principal import Role
from server.kernel.security import apikeys
from server.kernel.security.passwords import PasswordHasher, PasswordPolicy
from server.kernel.security.tokens import InvalidToken, TokenCodec, parse_signing_keys
from server.kernel.settings import Settings, load_settings
from storage import sessions, users
from storage.db import Connection, Row

INVALID_CREDENTIALS = "invalid credentials"


@dataclass(frozen=True)
class Refreshed:
    tokens: TokenPair | None
    revoked_session: uuid.UUID | None  # set when a reused token revoked its session


def user_out(row: Row) -> UserOut:
    return UserOut.model_validate({k: v for k, v in row.items() if k != "password_hash"})


def conflict_from(error: IntegrityViolation) -> AppError:
    """A taken email or username is 409; any other violation is the input's fault (422)."""
    if not error.unique:
        return ValidationFailed(
            "the change breaks a rule of the data", details={"constraint": error.constraint}
        )
    field = "email" if "email" in (error.constraint or "") else "username"
    return Conflict(f"this {field} is already taken", details={"field": field})


class AuthService:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        hasher: PasswordHasher | None = None,
        policy: PasswordPolicy | None = None,
    ) -> None:
        # No settings: read them from the environment, as the seed's AuthService() did.
        self.settings = settings if settings is not None else load_settings()
        keys = parse_signing_keys(
            self.settings.JWT_SIGNING_KEYS.get_secret_value(),
            self.settings.SECRET_KEY.get_secret_value(),
        )
        self.codec = TokenCodec(
            keys, issuer=self.settings.JWT_ISSUER, audience=self.settings.JWT_AUDIENCE
        )
        self.hasher = hasher or PasswordHasher(
            memory_cost=self.settings.ARGON2_MEMORY_COST,
            time_cost=self.settings.ARGON2_TIME_COST,
            parallelism=self.settings.ARGON2_PARALLELISM,
        )
        self.policy = policy or PasswordPolicy()

    # -- passwords -------------------------------------------------------------------------

    def check_password(self, password: str, *, email: str, username: str) -> None:
        problems = self.policy.check_policy(password, context_words=(email, username))
        if problems:
            raise ValidationFailed(
                "password " + "; ".join(problems),
                code="weak_password",
                details=[
                    {"loc": ["password"], "message": p, "type": "password_policy"} for p in problems
                ],
            )

    # -- registration ----------------------------------------------------------------------

    async def create_account(
        self,
        conn: Connection,
        user_data: UserCreate,
        *,
        role: Role = Role.user,
        is_active: bool = True,
    ) -> Row:
        """The new account's row, for every way of making one (self-registration, admins,
        the CLI): 422 for a refused password, then 409 for a taken username (ignoring case;
        usernames are public, so before the hash and whatever the email), then the password's
        hash, then the row. A clash on insert (a taken email, or a username taken a moment
        ago) is raised as IntegrityViolation: the caller decides what it answers, after the
        same work as for a free email."""
        self.check_password(user_data.password, email=user_data.email, username=user_data.username)
        # The username pattern has no "@", so this matches usernames only.
        if await users.find_by_login(conn, user_data.username) is not None:
            raise Conflict("this username is already taken", details={"field": "username"})
        password_hash = await self.hasher.hash(user_data.password)
        return await users.create(
            conn,
            email=user_data.email,
            username=user_data.username,
            password_hash=password_hash,
            role=role.value,
            full_name=user_data.full_name,
            is_active=is_active,
        )

    async def register_user(
        self,
        conn: Connection,
        *,
        user_data: UserCreate,
        role: Role = Role.user,
        is_active: bool = True,
    ) -> UserOut:
        """An account made by an admin or the CLI: a taken email or username is 409."""
        try:
            row = await self.create_account(conn, user_data, role=role, is_active=is_active)
        except IntegrityViolation as error:
            raise conflict_from(error) from None
        return user_out(row)

    # -- logging in ------------------------------------------------------------------------

    async def verify_credentials(self, conn: Connection, login: str, password: str) -> Row:
        """The user whose login and password these are. Unknown users, wrong passwords and
        deactivated accounts get the same error after the same work (a real or dummy verify),
        so neither the answer nor its timing tells which accounts exist or which password of
        a deactivated account is right."""
        row = await users.find_by_login(conn, login)
        if row is None:
            await self.hasher.dummy_verify(password)
            raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
        valid, new_hash = await self.hasher.verify(password, row["password_hash"])
        if not valid or not row["is_active"]:  # never confirm a deactivated account's password
            raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
        if new_hash is not None:  # parameters changed since it was hashed: upgrade it
            row = {**row, "password_hash": new_hash}
        await users.record_login(conn, row["id"], new_hash)
        return row

    async def login(
        self,
        conn: Connection,
        *,
        email: str | None = None,
        username: str | None = None,
        password: str,
        user_agent: str | None = None,
        ip: str | None = None,
    ) -> LoginResult:
        login = (email or username or "").strip()
        row = await self.verify_credentials(conn, login, password)
        tokens = await self.start_session(conn, row, user_agent=user_agent, ip=ip)
        return LoginResult(user=user_out(row), tokens=tokens, **tokens.model_dump())

    async def start_session(
        self, conn: Connection, user: Row, *, user_agent: str | None, ip: str | None
    ) -> TokenPair:
        refresh_token = apikeys.new_refresh_token()
        session = await sessions.create(
            conn,
            user_id=user["id"],
            expires_at=datetime.now(UTC) + timedelta(seconds=self.settings.REFRESH_TOKEN_TTL),
            token_hash=apikeys.hash_refresh_token(refresh_token),
            user_agent=(user_agent or "")[:300] or None,
            ip=ip,
        )
        return self._pair(user["id"], Role(user["role"]), session["id"], refresh_token)

    def _pair(self, user_id: int, role: Role, session_id: uuid.UUID, refresh: str) -> TokenPair:
        return TokenPair(
            access_token=self.access_token(user_id, role, session_id),
            refresh_token=refresh,
            expires_in=self.settings.ACCESS_TOKEN_TTL,
        )

    def access_token(self, user_id: int, role: Role, session_id: uuid.UUID) -> str:
        return self.codec.encode(
            {"sub": str(user_id), "sid": str(session_id), "role": role.value},
            token_type="access",
            ttl=timedelta(seconds=self.settings.ACCESS_TOKEN_TTL),
        )

    def decode_access_token(self, token: str) -> dict[str, Any]:
        try:
            claims = self.codec.decode(token, token_type="access")
            int(claims["sub"])
            uuid.UUID(str(claims["sid"]))
        except InvalidToken as error:
            raise Unauthorized(error.reason, code="invalid_token") from None
        except (KeyError, ValueError):
            raise Unauthorized("malformed token", code="invalid_token") from None
        return claims

    # -- refresh and logout ----------------------------------------------------------------

    async def refresh(
        self, conn: Connection, refresh_token: str, *, user_agent: str | None = None
    ) -> Refreshed:
        """Spend `refresh_token` and issue the next pair. A token that was already spent
        revokes its whole session (someone replayed it) and gets no tokens."""
        token_hash = apikeys.hash_refresh_token(refresh_token)
        found = await sessions.find_token(conn, token_hash)
        if found is None:
            return Refreshed(None, None)
        session_id = found["session_id"]
        if found["session_revoked_at"] is not None or found["session_expires_at"] <= datetime.now(
            UTC
        ):
            return Refreshed(None, None)
        if not await sessions.spend_token(conn, token_hash):
            await sessions.revoke(conn, session_id, "refresh token reused")
            return Refreshed(None, session_id)
        user = await users.get(conn, found["user_id"])
        if user is None or not user["is_active"]:
            return Refreshed(None, None)
        next_token = apikeys.new_refresh_token()
        await sessions.add_token(conn, session_id, apikeys.hash_refresh_token(next_token))
        return Refreshed(self._pair(user["id"], Role(user["role"]), session_id, next_token), None)

    async def logout(
        self, conn: Connection, refresh_token: str, *, user_id: int
    ) -> uuid.UUID | None:
        """End the session `refresh_token` belongs to (if it is this user's)."""
        found = await sessions.find_token(conn, apikeys.hash_refresh_token(refresh_token))
        if found is None or found["user_id"] != user_id:
            return None
        revoked = await sessions.revoke(conn, found["session_id"], "logout", user_id=user_id)
        return None if revoked is None else revoked["id"]

    async def change_password(
        self,
        conn: Connection,
        *,
        user_id: int,
        current_password: str,
        new_password: str,
        keep_session: uuid.UUID | None,
    ) -> list[uuid.UUID]:
        """Change the password and end every other session; return the revoked ids."""
        user = await users.get(conn, user_id)
        if user is None:
            raise Unauthorized("account no longer exists")
        valid, _ = await self.hasher.verify(current_password, user["password_hash"])
        if not valid:
            raise Forbidden("current password is wrong", code="wrong_password")
        self.check_password(new_password, email=user["email"], username=user["username"])
        await users.update(conn, user_id, password_hash=await self.hasher.hash(new_password))
        return await sessions.revoke_all(conn, user_id, "password changed", keep=keep_session)


auth_service_key: web.AppKey[AuthService] = web.AppKey("auth_service", AuthService)
