"""User management for admins: GET /users (pages, filters, literal text search), POST
/users, GET|PATCH|DELETE /users/{id}. Deactivating or deleting a user takes effect at once;
plain users get 403 on every admin route. Role rules are in test_users_roles.py."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.test_http_errors import assert_envelope
from tests.support.accounts import PASSWORD, Account

ADMIN_ROUTES = [
    ("GET", "/users", None),
    ("POST", "/users", {"email": "x@example.org", "username": "xyz", "password": PASSWORD}),
    ("GET", "/users/{id}", None),
    ("PATCH", "/users/{id}", {"is_active": False}),
    ("DELETE", "/users/{id}", None),
]


async def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    return assert_envelope(await response.json(), code)


async def create_user(client: Any, actor: Account, **fields: Any) -> dict[str, Any]:
    name = f"m{uuid.uuid4().hex[:10]}"
    body = {"email": f"{name}@example.org", "username": name, "password": PASSWORD} | fields
    response = await client.post("/users", json=body, headers=actor.headers)
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def listing(client: Any, actor: Account, **query: Any) -> dict[str, Any]:
    response = await client.get("/users", params=query, headers=actor.headers)
    assert response.status == 200, await response.text()
    page: dict[str, Any] = await response.json()
    return page


async def log_in_as(client: Any, user: dict[str, Any]) -> Any:
    return await client.post("/auth/login", json={"email": user["email"], "password": PASSWORD})


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_plain_users_get_403_on_admin_routes(
    client: Any, alice: Account, bob: Account, method: str, path: str, body: Any
) -> None:
    url = path.format(id=bob.id)
    response = await client.request(method, url, json=body, headers=alice.headers)
    await refused(response, 403, "insufficient_role")
    assert (await client.get("/users/me", headers=bob.headers)).status == 200


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_strangers_get_401_on_admin_routes(
    client: Any, bob: Account, method: str, path: str, body: Any
) -> None:
    response = await client.request(method, path.format(id=bob.id), json=body)
    await refused(response, 401, "unauthorized")


async def test_pages_cover_every_match_once_newest_first(client: Any, admin: Account) -> None:
    marker = uuid.uuid4().hex[:12]
    made = [(await create_user(client, admin, full_name=f"{marker} {i}"))["id"] for i in range(5)]
    pages = [await listing(client, admin, q=marker, per_page=2, page=n) for n in (1, 2, 3, 4)]
    assert [page["total"] for page in pages] == [5, 5, 5, 5]
    assert [(page["page"], page["per_page"]) for page in pages] == [(n, 2) for n in (1, 2, 3, 4)]
    assert [len(page["items"]) for page in pages] == [2, 2, 1, 0]
    seen = [item["id"] for page in pages for item in page["items"]]
    assert seen == sorted(made, reverse=True)
    assert "password_hash" not in str(pages)


@pytest.mark.parametrize(
    "query", [{"per_page": 0}, {"per_page": 101}, {"page": 0}, {"role": "god"}]
)
async def test_bad_list_queries_are_422(client: Any, admin: Account, query: Any) -> None:
    response = await client.get("/users", params=query, headers=admin.headers)
    await refused(response, 422, "validation_error")


async def test_filters_by_role_active_state_and_text(
    client: Any, admin: Account, superuser: Account
) -> None:
    marker = uuid.uuid4().hex[:12]
    active = await create_user(client, admin, full_name=f"{marker} active")
    inactive = await create_user(client, admin, full_name=f"{marker} off", is_active=False)
    promoted = await create_user(client, superuser, full_name=f"{marker} boss", role="admin")

    def ids(page: dict[str, Any]) -> list[int]:
        return [item["id"] for item in page["items"]]

    assert ids(await listing(client, admin, q=marker, is_active="false")) == [inactive["id"]]
    assert ids(await listing(client, admin, q=marker, is_active="true")) == [
        promoted["id"],
        active["id"],
    ]
    assert ids(await listing(client, admin, q=marker, role="admin")) == [promoted["id"]]
    admins = await listing(client, admin, role="admin", per_page=100)
    assert {item["role"] for item in admins["items"]} == {"admin"}
    assert admin.id in ids(admins)
    by_username = await listing(client, admin, q=active["username"].upper())
    assert ids(by_username) == [active["id"]]
    by_email = await listing(client, admin, q=inactive["email"])
    assert ids(by_email) == [inactive["id"]]


async def test_hostile_search_text_matches_literally(client: Any, admin: Account) -> None:
    marker = uuid.uuid4().hex[:12]
    names = {
        "%": f"{marker}%percent",
        "_": f"{marker}_underscore",
        "\\": f"{marker}\\backslash",
        "x": f"{marker}xplain",
    }
    made = {
        key: (await create_user(client, admin, full_name=name))["id"] for key, name in names.items()
    }
    for special in ("%", "_", "\\"):
        page = await listing(client, admin, q=marker + special)
        assert [item["id"] for item in page["items"]] == [made[special]], special
        assert page["total"] == 1
    assert (await listing(client, admin, q=marker))["total"] == 4
    for hostile in ("%", "_", "\\", "%%", "'; DROP TABLE users; --", "\\%", "[a-z]*"):
        page = await listing(client, admin, q=hostile, per_page=100)
        for item in page["items"]:
            haystack = f"{item['email']} {item['username']} {item['full_name'] or ''}".lower()
            assert hostile.lower() in haystack, (hostile, item)


async def test_admin_creates_a_plain_user_who_can_log_in(client: Any, admin: Account) -> None:
    created = await create_user(client, admin, full_name="Made By Admin")
    assert (created["role"], created["is_active"]) == ("user", True)
    assert (await log_in_as(client, created)).status == 200
    fetched = await client.get(f"/users/{created['id']}", headers=admin.headers)
    assert fetched.status == 200
    assert (await fetched.json())["full_name"] == "Made By Admin"


async def test_admin_create_refuses_bad_input(client: Any, admin: Account, bob: Account) -> None:
    async def post(**fields: Any) -> Any:
        body = {"email": f"{uuid.uuid4().hex[:8]}@example.org", "username": uuid.uuid4().hex[:8]}
        return await client.post("/users", json=body | fields, headers=admin.headers)

    await refused(await post(password="password123"), 422, "weak_password")
    await refused(await post(password=PASSWORD, email=bob.email.upper()), 409, "conflict")
    await refused(await post(password=PASSWORD, colour="red"), 422, "validation_error")
    await refused(await post(password=PASSWORD, username="no spaces"), 422, "validation_error")


async def test_get_unknown_or_malformed_user(client: Any, admin: Account) -> None:
    await refused(await client.get("/users/999999999", headers=admin.headers), 404, "not_found")
    await refused(await client.get("/users/abc", headers=admin.headers), 422, "validation_error")
    await refused(await client.get("/users/0", headers=admin.headers), 422, "validation_error")


async def test_deactivation_takes_effect_at_once_and_is_reversible(
    client: Any, admin: Account, bob: Account
) -> None:
    assert (await client.get("/users/me", headers=bob.headers)).status == 200
    response = await client.patch(
        f"/users/{bob.id}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status == 200
    assert (await response.json())["is_active"] is False
    assert (await client.get("/users/me", headers=bob.headers)).status == 401
    refreshed = await client.post("/auth/refresh", json={"refresh_token": bob.refresh_token})
    assert refreshed.status == 401
    login = await client.post("/auth/login", json={"email": bob.email, "password": bob.password})
    await refused(login, 401, "invalid_credentials")  # the right password is not confirmed

    back = await client.patch(f"/users/{bob.id}", json={"is_active": True}, headers=admin.headers)
    assert back.status == 200
    login = await client.post("/auth/login", json={"email": bob.email, "password": bob.password})
    assert login.status == 200
    assert (await client.get("/users/me", headers=bob.headers)).status == 401  # stays ended


async def test_admin_edits_a_plain_users_profile(client: Any, admin: Account, bob: Account) -> None:
    response = await client.patch(
        f"/users/{bob.id}", json={"full_name": "Robert"}, headers=admin.headers
    )
    assert response.status == 200
    assert (await (await client.get("/users/me", headers=bob.headers)).json())[
        "full_name"
    ] == "Robert"
    await refused(
        await client.patch("/users/999999999", json={"full_name": "x"}, headers=admin.headers),
        404,
        "not_found",
    )


async def test_deleting_a_user_ends_their_access(client: Any, admin: Account, bob: Account) -> None:
    response = await client.delete(f"/users/{bob.id}", headers=admin.headers)
    assert response.status == 204
    gone = await client.get("/users/me", headers=bob.headers)
    assert gone.status == 401
    assert (await gone.json())["error"]["code"] in ("account_inactive", "session_revoked")
    await refused(await client.get(f"/users/{bob.id}", headers=admin.headers), 404, "not_found")
    again = await client.delete(f"/users/{bob.id}", headers=admin.headers)
    await refused(again, 404, "not_found")


@pytest.mark.parametrize("field", ["role", "is_active", "email"])
async def test_null_for_a_required_field_is_422(
    client: Any, superuser: Account, bob: Account, field: str
) -> None:
    response = await client.patch(f"/users/{bob.id}", json={field: None}, headers=superuser.headers)
    await refused(response, 422, "validation_error")
