"""Settings: defaults work with no .env, bad values name their variable, production refuses
weak secrets, and the generated docs match the class."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from server import settings_docs
from server.kernel.settings import DEV_SECRET, ConfigError, Settings, load_settings


def test_development_needs_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.ENVIRONMENT == "development"
    assert settings.PORT == 8000
    assert settings.SECRET_KEY.get_secret_value() == DEV_SECRET


def test_malformed_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_PORT", "not-a-port")
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert "POSTGRES_PORT" in str(caught.value)
    assert "not-a-port" in str(caught.value)


def test_several_bad_values_are_all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "99999")
    monkeypatch.setenv("ENVIRONMENT", "staging")
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert "PORT" in str(caught.value)
    assert "ENVIRONMENT" in str(caught.value)


@pytest.mark.parametrize("secret", [DEV_SECRET, "short-secret"])
def test_production_refuses_default_or_short_secret(secret: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, ENVIRONMENT="production", SECRET_KEY=secret)
    message = str(caught.value)
    assert "SECRET_KEY" in message
    assert secret not in message  # never echo a secret


def test_production_accepts_a_long_random_secret() -> None:
    settings = load_settings(_env_file=None, ENVIRONMENT="production", SECRET_KEY="x" * 40)
    assert settings.is_production


def test_secrets_are_hidden_from_repr() -> None:
    settings = Settings(_env_file=None, POSTGRES_PASSWORD="hunter2-password")  # type: ignore[call-arg]
    assert "hunter2-password" not in repr(settings)
    assert "guest:guest" not in repr(settings)


def test_cli_stops_with_the_variable_name_and_exit_code_2() -> None:
    env = {**os.environ, "DB_POOL_SIZE": "lots"}
    result = subprocess.run(
        [sys.executable, "-m", "server", "db", "info"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "DB_POOL_SIZE" in result.stderr


def test_configuration_docs_and_env_example_are_generated_from_settings() -> None:
    assert settings_docs.stale_files() == [], "run `make settings-docs`"
    markdown = settings_docs.render_markdown()
    env_example = settings_docs.render_env()
    for name in Settings.model_fields:
        assert f"`{name}`" in markdown
        assert f"\n{name}=" in env_example
