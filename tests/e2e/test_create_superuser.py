"""`python -m server create-superuser`: password from the flag or SUPERUSER_PASSWORD, the
same policy as everyone else, no duplicates, and the account can log in as a superuser."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def run(settings: Any, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "create-superuser", *args],
        cwd=ROOT,
        env={**os.environ, "POSTGRES_DB": settings.POSTGRES_DB, **env},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


async def test_create_superuser_then_log_in(settings: Any, client: Any) -> None:
    name = f"root{uuid.uuid4().hex[:6]}"
    email = f"{name}@example.org"
    done = run(
        settings, "--email", email, "--username", name, SUPERUSER_PASSWORD="the root passphrase"
    )
    assert done.returncode == 0, done.stderr
    assert f"superuser {name} created" in done.stdout

    response = await client.post(
        "/auth/login", json={"email": email, "password": "the root passphrase"}
    )
    assert response.status == 200
    assert (await response.json())["user"]["role"] == "superuser"

    again = run(
        settings, "--email", email, "--username", name + "x", "--password", "another passphrase"
    )
    assert again.returncode == 1
    assert "already taken" in again.stderr


def test_weak_or_missing_passwords_are_refused(settings: Any) -> None:
    weak = run(
        settings, "--email", "w@example.org", "--username", "weakroot", "--password", "password1"
    )
    assert weak.returncode == 1
    assert "too common" in weak.stderr
    env = {k: v for k, v in os.environ.items() if k != "SUPERUSER_PASSWORD"}
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "server",
            "create-superuser",
            "--email",
            "m@example.org",
            "--username",
            "mroot",
        ],
        cwd=ROOT,
        env={**env, "POSTGRES_DB": settings.POSTGRES_DB},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert missing.returncode != 0
    assert "no password" in missing.stderr
