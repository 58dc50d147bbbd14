"""Accounts and authentication, shared by every surface (REST, WebSocket, SSE, signaling).

    principal.py      Role, scopes, Principal (who is calling) and Access (what a route needs)
    schemas.py        the pydantic models of the account API (UserCreate, LoginResult, ...)
    service.py        AuthService: register, login, refresh, logout, passwords (database only)
    authenticator.py  Authenticator: request -> Principal, revocation cache, tickets
    throttle.py       failed-login throttling per account and per client address (Redis)

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
