"""docs/CONFIGURATION.md and .env.example, generated from the Settings class so they cannot
drift: `python -m server settings-docs --write` rewrites them, `--check` fails when stale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr

from server.kernel.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"docs/CONFIGURATION.md": "markdown", ".env.example": "env"}


def _default(value: Any) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fields() -> list[tuple[str, str, str]]:
    return [
        (name, _default(field.default), field.description or "")
        for name, field in Settings.model_fields.items()
    ]


def render_markdown() -> str:
    lines = [
        "# Configuration",
        "",
        "<!-- Generated from server/kernel/settings.py by `make settings-docs`;"
        " a test keeps it true. -->",
        "",
        "Every setting is an environment variable (or a line of `.env` in the working",
        "directory); names are case-insensitive. Development needs none of them. A missing or",
        "malformed value stops startup with a message naming the variable, and",
        "`ENVIRONMENT=production` refuses a default or short `SECRET_KEY`.",
        "",
        "| Variable | Default | Description |",
        "|---|---|---|",
    ]
    for name, default, description in _fields():
        shown = f"`{default}`" if default else "(empty)"
        lines.append(f"| `{name}` | {shown} | {description} |")
    return "\n".join(lines) + "\n"


def render_env() -> str:
    lines = [
        "# Every setting with its default. Copy to .env and change what you need:",
        "#   cp .env.example .env",
        "# Generated from server/kernel/settings.py by `make settings-docs`.",
    ]
    for name, default, description in _fields():
        lines += ["", f"# {description}", f"{name}={default}"]
    return "\n".join(lines) + "\n"


def render(kind: str) -> str:
    return render_markdown() if kind == "markdown" else render_env()


def stale_files() -> list[str]:
    stale = []
    for relative, kind in TARGETS.items():
        path = ROOT / relative
        if not path.exists() or path.read_text(encoding="utf-8") != render(kind):
            stale.append(relative)
    return stale


def write() -> None:
    for relative, kind in TARGETS.items():
        (ROOT / relative).write_text(render(kind), encoding="utf-8")
