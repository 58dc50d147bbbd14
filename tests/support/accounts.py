"""Accounts for tests: made through the real service, logged in through the real API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from server.auth.schemas import UserCreate
from server.auth.service import AuthService
from server.kernel.principal import Role
from storage.db import transaction

PASSWORD = "correct horse battery staple"


@dataclass
class Account:
    id: int
    email: str
    username: str
    password: str
    role: str
    access_token: str = ""
    refresh_token: str = ""
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}", **self.extra_headers}


async def create_account(
    pool: Any, service: AuthService, *, role: Role = Role.user, password: str = PASSWORD
) -> Account:
    name = f"u{uuid.uuid4().hex[:10]}"
    async with transaction(pool) as conn:
        user = await service.register_user(
            conn,
            user_data=UserCreate(
                email=f"{name}@example.org",
                username=name,
                password=password,
                password_confirm=password,
            ),
            role=role,
        )
    return Account(user.id, user.email, user.username, password, role.value)


async def log_in(client: Any, account: Account) -> Account:
    response = await client.post(
        "/auth/login", json={"email": account.email, "password": account.password}
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    account.access_token = body["tokens"]["access_token"]
    account.refresh_token = body["tokens"]["refresh_token"]
    return account


class AsUser:
    """The test client, sending an account's credentials with every request."""

    def __init__(self, client: Any, account: Account) -> None:
        self.client = client
        self.account = account

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.account.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def make_url(self, path: str) -> Any:
        return self.client.make_url(path)
