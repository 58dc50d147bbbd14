"""Blocking JSON over HTTP for tests that drive separate processes (stdlib only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def request(
    method: str,
    url: str,
    body: Any = None,
    timeout: float = 5,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (test URLs)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 (test URLs)
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def get(url: str, timeout: float = 5, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    return request("GET", url, timeout=timeout, headers=headers)


def post(
    url: str, body: Any, timeout: float = 5, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    return request("POST", url, body, timeout=timeout, headers=headers)


def register_and_log_in(base: str, name: str, password: str) -> dict[str, str]:
    """A new account on a running server; the headers that authenticate as it."""
    account = {"email": f"{name}@example.org", "username": name, "password": password}
    status, body = post(f"{base}/auth/register", {**account, "password_confirm": password})
    assert status == 202, body
    status, body = post(f"{base}/auth/login", {"email": account["email"], "password": password})
    assert status == 200, body
    return {"Authorization": f"Bearer {body['tokens']['access_token']}"}
