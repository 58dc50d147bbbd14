"""A wrong PostgreSQL setting at startup (`python -m server run`, `db ...`): the message names
the setting and the host:port tried (never the password), says how long it will wait, gives
the advice that fits the cause, and is not repeated every second."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from server import runner
from tests.conftest import make_settings


def waiting_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == runner.__name__ and r.levelno == logging.WARNING
    ]


def test_closed_port_names_host_port_and_setting_and_waits_quietly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runner, "DB_WAIT_SECONDS", 2.5)
    settings = make_settings(
        POSTGRES_SERVER="127.0.0.1", POSTGRES_PORT=1, POSTGRES_PASSWORD="hunter2-secret"
    )
    with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as stopped:
        runner.prepare_database(settings)
    lines = waiting_lines(caplog)
    assert len(lines) == 1  # one line when waiting starts, not one per second
    assert "refused the connection at 127.0.0.1:1" in lines[0]
    assert "POSTGRES_PORT" in lines[0]
    assert "waiting up to 2.5 s" in lines[0]
    final = str(stopped.value)
    assert "gave up waiting for PostgreSQL after 2.5 s" in final
    assert "127.0.0.1:1" in final and "POSTGRES_PORT" in final
    assert "hunter2-secret" not in final + caplog.text


def test_unknown_host_says_check_postgres_server(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runner, "DB_WAIT_SECONDS", 1.0)
    settings = make_settings(POSTGRES_SERVER="no-such-host.invalid", POSTGRES_PORT=5432)
    with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as stopped:
        runner.prepare_database(settings)
    lines = waiting_lines(caplog)
    assert len(lines) == 1
    assert "unknown PostgreSQL host 'no-such-host.invalid'" in lines[0]
    assert "check POSTGRES_SERVER" in lines[0]
    assert "check POSTGRES_SERVER" in str(stopped.value)
    assert "pg_ctlcluster" not in str(stopped.value)  # starting PostgreSQL would not help


def test_wrong_user_stops_at_once_and_says_check_credentials(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runner, "DB_WAIT_SECONDS", 5.0)
    settings = make_settings(POSTGRES_USER="no_such_role_xyz", POSTGRES_PASSWORD="hunter2-secret")
    with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as stopped:
        runner.prepare_database(settings)
    assert waiting_lines(caplog) == []  # waiting cannot fix credentials
    final = str(stopped.value)
    assert "'no_such_role_xyz'" in final
    assert "check POSTGRES_USER / POSTGRES_PASSWORD" in final
    assert "hunter2-secret" not in final


def test_missing_database_names_postgres_db() -> None:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("POSTGRES_", "DB_"))
    }
    env["POSTGRES_DB"] = "no_such_database_xyz"
    result = subprocess.run(
        [sys.executable, "-m", "server", "db", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "no database 'no_such_database_xyz'" in result.stderr
    assert "check POSTGRES_DB" in result.stderr
    assert "Traceback" not in result.stderr
