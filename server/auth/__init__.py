"""Accounts and authentication, shared by every surface (REST, WebSocket, SSE, signaling).

    schemas.py        the pydantic models of the account API (UserCreate, LoginResult, ...)
    fields.py         field types whose schema says what validation enforces (Email, ...)
    service.py        AuthService: register, login, refresh, logout, passwords (database only)
    authenticator.py  Authenticator: request -> Principal; it is the auth cache (cache.py)
                      and holds one part per concern (standing.py, api_key_auth.py,
                      tickets.py, revocation.py)
    admin.py          UserAdmin: managing accounts, under the rules of admin_rules.py
    throttle.py       failed-login throttling per account and per client address (Redis)

Role, scopes, Principal and Access are values of the kernel (server/kernel/principal.py).

The seed's API works as before:

    result = await AuthService().login(conn, email="a@b.c", password="...")
    result.tokens.access_token
"""

from server.auth.schemas import LoginResult, TokenPair, UserCreate, UserOut
from server.auth.service import AuthService
from server.kernel.principal import Access, Principal, Role

__all__ = [
    "Access",
    "AuthService",
    "LoginResult",
    "Principal",
    "Role",
    "TokenPair",
    "UserCreate",
    "UserOut",
]
