"""User administration rules, decided without a database: who may manage whom, which
changes must keep an active superuser, and which changes reach caches and connections."""

from __future__ import annotations

import pytest

from server.auth.admin_rules import (
    access_changed,
    last_superuser,
    may_remove_a_superuser,
    require_manageable,
)
from server.kernel.errors import Conflict, Forbidden
from server.kernel.principal import Principal, Role

ADMIN = Principal(user_id=1, role=Role.admin)
SUPERUSER = Principal(user_id=2, role=Role.superuser)


@pytest.mark.parametrize("actor", [ADMIN, SUPERUSER])
def test_admins_and_superusers_manage_plain_users(actor: Principal) -> None:
    require_manageable(actor, "user")
    require_manageable(actor, "user", Role.user)


@pytest.mark.parametrize("target", ["admin", "superuser"])
def test_an_admin_cannot_manage_privileged_accounts(target: str) -> None:
    with pytest.raises(Forbidden) as caught:
        require_manageable(ADMIN, target)
    assert caught.value.code == "insufficient_role"


@pytest.mark.parametrize("new_role", [Role.admin, Role.superuser])
def test_an_admin_cannot_grant_privileged_roles(new_role: Role) -> None:
    with pytest.raises(Forbidden):
        require_manageable(ADMIN, "user", new_role)


@pytest.mark.parametrize("target", ["user", "admin", "superuser"])
@pytest.mark.parametrize("new_role", [None, Role.user, Role.admin, Role.superuser])
def test_a_superuser_manages_everyone(target: str, new_role: Role | None) -> None:
    require_manageable(SUPERUSER, target, new_role)


def test_a_plain_user_cannot_manage_privileged_accounts() -> None:
    with pytest.raises(Forbidden):
        require_manageable(Principal(user_id=3, role=Role.user), "admin")


@pytest.mark.parametrize(
    "changes",
    [
        {"role": "admin"},
        {"role": "user"},
        {"is_active": False},
        {"role": "superuser", "is_active": False},
    ],
)
def test_demotion_or_deactivation_must_keep_a_superuser(changes: dict[str, object]) -> None:
    assert may_remove_a_superuser(changes)


@pytest.mark.parametrize(
    "changes",
    [{}, {"full_name": "Ann"}, {"role": "superuser"}, {"is_active": True}, {"email": "a@b.c"}],
)
def test_other_changes_need_no_superuser_check(changes: dict[str, object]) -> None:
    assert not may_remove_a_superuser(changes)


def test_access_changes_with_role_or_active_state() -> None:
    before = {"role": "user", "is_active": True, "full_name": "Ann"}
    assert access_changed(before, {**before, "role": "admin"})
    assert access_changed(before, {**before, "is_active": False})
    assert not access_changed(before, {**before, "full_name": "Anna"})


def test_last_superuser_is_a_conflict_with_its_own_code() -> None:
    error = last_superuser()
    assert isinstance(error, Conflict)
    assert error.code == "last_superuser"
