"""Blocking JSON over HTTP for tests that drive separate processes (stdlib only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def request(method: str, url: str, body: Any = None, timeout: float = 5) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (test URLs)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 (test URLs)
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def get(url: str, timeout: float = 5) -> tuple[int, Any]:
    return request("GET", url, timeout=timeout)


def post(url: str, body: Any, timeout: float = 5) -> tuple[int, Any]:
    return request("POST", url, body, timeout=timeout)
