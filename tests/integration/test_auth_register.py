"""POST /auth/register: a new account with the `user` role; taken names (ignoring case) are
409, malformed input 422, and weak passwords 422 `weak_password` without composition rules.
Also the seed's Python API (AuthService.register_user / login) against the HTTP API."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from server.auth.schemas import UserCreate
from server.auth.service import AuthService
from storage.db import transaction
from tests.integration.test_http_errors import assert_envelope

PASSWORD = "violet staple orbit lantern"


def new_user(**changes: Any) -> dict[str, Any]:
    name = f"r{uuid.uuid4().hex[:10]}"
    body = {
        "email": f"{name}@example.org",
        "username": name,
        "password": PASSWORD,
        "password_confirm": PASSWORD,
    }
    return body | changes


async def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    return assert_envelope(await response.json(), code)


async def test_register_creates_a_plain_user_without_secrets(client: Any) -> None:
    body = new_user(full_name="Ada Lovelace")
    response = await client.post("/auth/register", json=body)
    assert response.status == 201, await response.text()
    user = await response.json()
    assert user["email"] == body["email"]
    assert user["username"] == body["username"]
    assert user["full_name"] == "Ada Lovelace"
    assert user["role"] == "user"
    assert user["is_active"] is True
    assert isinstance(user["id"], int)
    text = await response.text()
    assert PASSWORD not in text
    assert "password" not in text and "argon2" not in text

    login = await client.post(
        "/auth/login", json={"email": body["email"], "password": body["password"]}
    )
    assert login.status == 200
    assert (await login.json())["user"]["id"] == user["id"]


async def test_register_cannot_pick_its_own_role(client: Any) -> None:
    response = await client.post("/auth/register", json=new_user(role="superuser"))
    error = await refused(response, 422, "validation_error")
    assert ["role"] in [item["loc"] for item in error["details"]]


@pytest.mark.parametrize("field", ["email", "username"])
async def test_taken_email_or_username_ignoring_case_is_409(client: Any, field: str) -> None:
    first = new_user()
    assert (await client.post("/auth/register", json=first)).status == 201
    clash = new_user(**{field: first[field].upper()})
    error = await refused(await client.post("/auth/register", json=clash), 409, "conflict")
    assert error["details"] == {"field": field}
    assert field in error["message"]


async def test_mismatched_password_confirmation_is_422(client: Any) -> None:
    body = new_user(password_confirm=PASSWORD + " but different")
    error = await refused(await client.post("/auth/register", json=body), 422, "validation_error")
    assert "password_confirm" in error["details"][0]["message"]
    assert PASSWORD not in repr(error)


@pytest.mark.parametrize(
    "email", ["not-an-email", "two@@example.org", "@example.org", "x@", "", "a b@example.org"]
)
async def test_bad_email_is_422(client: Any, email: str) -> None:
    response = await client.post("/auth/register", json=new_user(email=email))
    error = await refused(response, 422, "validation_error")
    assert error["details"][0]["loc"] == ["email"]


@pytest.mark.parametrize(
    "username", ["ab", "x" * 33, "has space", "semi;colon", "slash/name", "<script>", "émile"]
)
async def test_bad_username_is_422(client: Any, username: str) -> None:
    response = await client.post("/auth/register", json=new_user(username=username))
    error = await refused(response, 422, "validation_error")
    assert error["details"][0]["loc"] == ["username"]


async def test_unknown_fields_are_422(client: Any) -> None:
    response = await client.post("/auth/register", json=new_user(nickname="typo"))
    error = await refused(response, 422, "validation_error")
    assert error["details"][0]["loc"] == ["nickname"]


@pytest.mark.parametrize(
    "weak",
    [
        pytest.param(lambda user: "short1!", id="too-short"),
        pytest.param(lambda user: "password123", id="common"),
        pytest.param(lambda user: "PASSWORD123", id="common-any-case"),
        pytest.param(lambda user: "qwertyuiop", id="keyboard-walk"),
        pytest.param(lambda user: user["username"], id="equals-username"),
        pytest.param(lambda user: user["email"].upper(), id="equals-email"),
    ],
)
async def test_weak_passwords_are_422_weak_password(client: Any, weak: Any) -> None:
    body = new_user()
    password = weak(body)
    body |= {"password": password, "password_confirm": password}
    response = await client.post("/auth/register", json=body)
    error = await refused(response, 422, "weak_password")
    assert error["details"][0]["loc"] == ["password"]
    assert password not in await response.text()
    retry = await client.post("/auth/register", json=new_user(email=body["email"]))
    assert retry.status == 201, "the refused registration must not have kept the email"


async def test_a_200_character_passphrase_works(client: Any) -> None:
    passphrase = ("the quick brown fox jumps over a lazy dog " * 5)[:200]
    assert len(passphrase) == 200
    body = new_user(password=passphrase, password_confirm=passphrase)
    assert (await client.post("/auth/register", json=body)).status == 201
    login = await client.post("/auth/login", json={"email": body["email"], "password": passphrase})
    assert login.status == 200


async def test_password_over_1024_characters_is_422(client: Any) -> None:
    long = "a fairly long passphrase " * 50
    response = await client.post(
        "/auth/register", json=new_user(password=long, password_confirm=long)
    )
    await refused(response, 422, "validation_error")


async def test_seed_service_api_registers_and_logs_in(client: Any, db: Any, settings: Any) -> None:
    name = f"seed{uuid.uuid4().hex[:8]}"
    async with transaction(db) as conn:
        user = await AuthService(settings).register_user(
            conn,
            user_data=UserCreate(
                email=f"{name}@example.org",
                username=name,
                password=PASSWORD,
                password_confirm=PASSWORD,
            ),
        )
    async with transaction(db) as conn:
        result = await AuthService(settings).login(
            conn, email=f"{name}@example.org", password=PASSWORD
        )
    assert result.user.id == user.id
    assert result.tokens.token_type == "bearer"

    me = await client.get(
        "/users/me", headers={"Authorization": f"Bearer {result.tokens.access_token}"}
    )
    assert me.status == 200
    assert (await me.json())["username"] == name

    async with transaction(db) as conn:
        by_username = await AuthService(settings).login(conn, username=name, password=PASSWORD)
    assert by_username.user.id == user.id
