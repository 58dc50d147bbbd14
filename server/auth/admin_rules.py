"""The rules of user administration, as pure decisions (no database, no I/O):

- roles rank user < admin < superuser; every admin may read every account;
- admins manage plain users; only a superuser creates, changes or removes admins and
  superusers, or grants those roles;
- the last active superuser can be neither demoted, deactivated nor deleted; the database
  statement of the change checks it (storage/users.py `keeps_a_superuser`), so two
  concurrent changes cannot both remove "the other" superuser;
- a change of role or active state takes effect at once (caches, live connections).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.kernel.errors import Conflict, Forbidden
from server.kernel.principal import Principal, Role

PRIVILEGED = frozenset({Role.admin, Role.superuser})
LAST_SUPERUSER = "the last active superuser cannot be demoted, deactivated or deleted"


def require_manageable(actor: Principal, target_role: str, new_role: Role | None = None) -> None:
    """Forbidden unless `actor` may manage an account of `target_role` (and give it
    `new_role`, when one is asked for)."""
    touches_privileged = Role(target_role) in PRIVILEGED or new_role in PRIVILEGED
    if touches_privileged and not actor.is_at_least(Role.superuser):
        raise Forbidden(
            "only a superuser can manage admins or grant admin roles", code="insufficient_role"
        )


def may_remove_a_superuser(changes: Mapping[str, Any]) -> bool:
    """Whether applying `changes` could leave one superuser fewer (another role, or
    deactivation): such a change must keep an active superuser."""
    return changes.get("role", Role.superuser) != Role.superuser or not changes.get(
        "is_active", True
    )


def access_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether the account's role or active state differs after the change."""
    return bool(after["role"] != before["role"] or after["is_active"] != before["is_active"])


def last_superuser() -> Conflict:
    """The answer to a change refused because it would leave no active superuser."""
    return Conflict(LAST_SUPERUSER, code="last_superuser")
