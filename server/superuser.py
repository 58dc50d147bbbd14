"""`python -m server create-superuser`: the first account that can manage everything.

The password comes from --password, else SUPERUSER_PASSWORD, else a prompt (asked twice,
never echoed). It must pass the same policy as every other password."""

from __future__ import annotations

import asyncio
import getpass
import sys

from pydantic import ValidationError

from server.auth.schemas import UserCreate
from server.auth.service import AuthService
from server.kernel.errors import AppError
from server.kernel.principal import Role
from server.kernel.settings import Settings
from storage.db import create_pool, transaction


def _password(given: str | None, settings: Settings) -> str:
    if given:
        return given
    if settings.SUPERUSER_PASSWORD is not None:
        return settings.SUPERUSER_PASSWORD.get_secret_value()
    if not sys.stdin.isatty():
        raise SystemExit(
            "no password: pass --password, set SUPERUSER_PASSWORD, or run in a terminal"
        )
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password (again): "):
        raise SystemExit("the passwords differ")
    return first


async def _create(settings: Settings, user_data: UserCreate) -> int:
    async with create_pool(settings) as pool, transaction(pool) as conn:
        user = await AuthService(settings).register_user(
            conn, user_data=user_data, role=Role.superuser
        )
    return user.id


def create_superuser(settings: Settings, email: str, username: str, password: str | None) -> int:
    secret = _password(password, settings)
    try:
        user_data = UserCreate(
            email=email, username=username, password=secret, password_confirm=secret
        )
        user_id = asyncio.run(_create(settings, user_data))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        print(f"invalid input: {problems}", file=sys.stderr)
        return 2
    except AppError as error:
        print(f"cannot create the superuser: {error.message}", file=sys.stderr)
        return 1
    print(f"superuser {username} created (id {user_id})")
    return 0
