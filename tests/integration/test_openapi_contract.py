"""The OpenAPI document against the running server, property-based (schemathesis on
hypothesis): for every documented operation, requests generated from the document's own
schemas are sent to a real server on a port, as a fresh user (admins' operations as an
admin), and each answer must be documented (status, content type, body schema), never a 5xx,
and never a refusal of schema-valid input. Schema-valid input may still get 401/403 (the
credentials or role do not allow it), 404 (no such thing: ids are generated), 409 (a clash
with stored data, e.g. a taken username) and 429 (throttled): schemathesis' default for
positive_data_acceptance, and what the document lists per operation. 400, 413, 415 and 422
are refusals of the input itself and fail the test.

Bounded and deterministic: MAX_EXAMPLES per operation, derandomized with a fixed seed (the
same cases on every run), positive data only (what the document accepts must be accepted).
The server is a real process (`python -m server serve`), with its own Redis prefix so that
the failed logins it provokes throttle no other test."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from handlers.docs import DESCRIPTION
from handlers.openapi import operation_of
from handlers.openapi_document import build_spec
from server.app import create_app
from server.auth.service import AuthService
from server.kernel.principal import Role
from server.kernel.settings import Settings
from storage.db import create_pool
from tests.conftest import make_settings
from tests.support.accounts import Account, create_account
from tests.support.nodes import ROOT, node_env
from tests.support.processes import dies_with_parent
from tests.support.proxy import free_port

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    positive_data_acceptance,
]

# Left out, each for a reason:
SKIPPED = {
    # Ends every session of the test's user, so every later case would get 401.
    ("POST", "/auth/logout-all"),
    # Endless streams (requests would wait forever); their handshakes are tested in
    # test_realtime_sse.py and test_realtime_ws.py, their frames in the AsyncAPI document.
    ("GET", "/realtime/events"),
    ("GET", "/realtime/ws"),
    ("GET", "/realtime/webrtc/signaling"),
    # Its body is an SDP offer, whose grammar the document can only name in words, and a
    # usable one starts a WebRTC peer: tested in test_webrtc_*.py.
    ("POST", "/realtime/webrtc/offer"),
}


def follow_the_rules_in_prose(body: Any, user_id: int) -> None:
    """What the document states in words because JSON Schema cannot compare two fields, a
    value with the present or with stored data: generated bodies are brought in line (each
    rule has its own test where it is refused: test_openapi_rules.py)."""
    if isinstance(body, list):
        for item in body:
            follow_the_rules_in_prose(item, user_id)
        return
    if not isinstance(body, dict):
        return
    for name in ("password", "new_password"):
        if isinstance(body.get(name), str):  # not a common password, nor the username
            body[name] = "Zq9-" + body[name][4:]
    if "password_confirm" in body:  # the same text as `password`
        body["password_confirm"] = body.get("password")
    if body.get("expires_at") is not None:  # in the future
        body["expires_at"] = "2999-01-01T00:00:00Z"
    if isinstance(body.get("user_id"), (int, float)):  # a user that exists (else 404 / 422)
        body["user_id"] = user_id
    for value in body.values():
        if isinstance(value, (dict, list)):
            follow_the_rules_in_prose(value, user_id)


@dataclass
class LiveServer:
    base_url: str
    user: Account
    admin: Account
    admin_operations: set[tuple[str, str]]
    spare_user_id: int


def _admin_operations(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of the operations only admins may call."""
    found = set()
    for route in app.router.routes():
        op = operation_of(route.handler)
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if op is not None and op.auth is not None and op.auth.role >= Role.admin and path:
            found.add((route.method, path))
    return found


async def _forget(settings: Settings) -> None:
    client = redis.asyncio.Redis.from_url(settings.REDIS_URL.get_secret_value())
    keys = [key async for key in client.scan_iter(match=f"{settings.REDIS_PREFIX}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def _accounts(settings: Settings) -> tuple[Account, Account, int]:
    service = AuthService(settings)
    async with create_pool(settings) as pool:
        user = await create_account(pool, service)
        admin = await create_account(pool, service, role=Role.admin)
        spare = await create_account(pool, service)
    return user, admin, spare.id


def _wait_ready(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server process exited"
        try:
            if requests.get(f"{base_url}/health/ready", timeout=3).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not become ready")


@pytest.fixture(scope="module")
def live_server(base_settings: Settings) -> Iterator[LiveServer]:
    """The real server (`python -m server serve`, as in production) on a port, with a Redis
    prefix of its own: the failed logins it provokes must not throttle later tests. (A
    process, not a thread here: hypothesis checks that nothing else in its process uses the
    `random` module while it draws, and the server does, for jitter.)"""
    settings = base_settings.model_copy(
        update={"REDIS_PREFIX": f"{base_settings.REDIS_PREFIX}-contract"}
    )
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", str(port)],
        cwd=ROOT,
        env=node_env(settings),
        preexec_fn=dies_with_parent,
    )
    try:
        _wait_ready(base_url, process)
        user, admin, spare = asyncio.run(_accounts(settings))
        for account in (user, admin):
            response = requests.post(
                f"{base_url}/auth/login",
                json={"email": account.email, "password": account.password},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            account.access_token = response.json()["tokens"]["access_token"]
        yield LiveServer(base_url, user, admin, _admin_operations(create_app(settings)), spare)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        asyncio.run(_forget(settings))


# Per operation. 30 takes ~35 s for the ~50 operations on a 2-core machine; set
# CONTRACT_EXAMPLES (e.g. 500) for a deeper local run.
MAX_EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "30"))
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261207,
        "generation": {"mode": "positive", "max-examples": MAX_EXAMPLES, "deterministic": True},
    }
)


# The document is built from the routes without any I/O, so it is known when tests are
# collected (one test per operation); test_the_served_document_is_the_one_tested checks the
# server serves this very document. (schemathesis' lazy from_fixture loader breaks on
# pytest 9: it sets the private Function._nodeid.)
DOCUMENT = build_spec(
    create_app(make_settings()), title=make_settings().APP_NAME, description=DESCRIPTION
)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


def test_the_served_document_is_the_one_tested(live_server: LiveServer) -> None:
    served = requests.get(f"{live_server.base_url}/openapi.json", timeout=30).json()
    assert served == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_server_does_what_its_document_says(case: Any, live_server: LiveServer) -> None:
    key = (case.method.upper(), case.path)
    if key in SKIPPED:
        pytest.skip("left out on purpose (see SKIPPED)")
    account = live_server.admin if key in live_server.admin_operations else live_server.user
    user_id = (case.path_parameters or {}).get("user_id")
    if str(user_id) in (str(live_server.user.id), str(live_server.admin.id)):
        # An admin may deactivate or delete the test's own accounts: aim at a spare one.
        case.path_parameters["user_id"] = live_server.spare_user_id
    follow_the_rules_in_prose(case.body, live_server.user.id)
    case.call_and_validate(
        base_url=live_server.base_url,
        headers={"Authorization": f"Bearer {account.access_token}"},
        checks=CHECKS,
        timeout=30,
    )
