"""Misspelled settings: load_settings() warns once per lookalike name in the environment or
.env, naming the likely setting and never the value; unrelated names stay quiet."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from server.kernel.settings import load_settings


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_misspelled_environment_variable_is_named_with_its_likely_setting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DB_POOL_MAX", "lots")
    monkeypatch.setenv("SECRETKEY", "do-not-log-this-secret")
    with caplog.at_level(logging.WARNING):
        load_settings(_env_file=None)
    lines = warnings(caplog)
    assert "DB_POOL_MAX is not a setting (environment); did you mean DB_POOL_SIZE?" in lines
    assert "SECRETKEY is not a setting (environment); did you mean SECRET_KEY?" in lines
    assert not any("lots" in line or "do-not-log-this-secret" in line for line in lines)


def test_misspelled_dotenv_key_is_named(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("POSTGRES_PROT=5433\nPOSTGRES_PASS=hunter2-secret\nPOSTGRES_DB=x\n")
    with caplog.at_level(logging.WARNING):
        load_settings(_env_file=env_file)
    lines = warnings(caplog)
    assert f"POSTGRES_PROT is not a setting ({env_file}); did you mean POSTGRES_PORT?" in lines
    assert f"POSTGRES_PASS is not a setting ({env_file}); did you mean POSTGRES_PASSWORD?" in lines
    assert not any("hunter2-secret" in line or "5433" in line for line in lines)
    assert not any("POSTGRES_DB " in line for line in lines)


def test_unrelated_and_foreign_names_are_quiet(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in (
        "PATH_EXTRA",
        "HOSTNAME",
        "HOST_IP",
        "DEBUG_MODE",
        "PGPORT",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_RESOURCE_ATTRIBUTES",
        "POSTGRES_INITDB_ARGS",
        "RABBITMQ_DEFAULT_USER",
        "redis_urll",
    ):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("PORT", "8001")  # a real setting
    with caplog.at_level(logging.WARNING):
        load_settings(_env_file=None)
    assert warnings(caplog) == []


def test_common_alias_points_at_our_name(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("POSTGRES_HOST", "db")
    with caplog.at_level(logging.WARNING):
        load_settings(_env_file=None)
    assert warnings(caplog) == [
        "POSTGRES_HOST is not a setting (environment); did you mean POSTGRES_SERVER?"
    ]
