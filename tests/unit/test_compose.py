"""docker-compose.yml, read as a user's Docker would (no engine runs here): every setting it
passes exists, the servers scale (no fixed host port; nginx in front with the shipped
config), and the volumes it mounts are declared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from server.kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def test_every_variable_passed_to_the_app_is_a_setting() -> None:
    services = compose()["services"]
    known = set(Settings.model_fields)
    for name in ("migrate", "server", "worker"):
        unknown = set(services[name]["environment"]) - known
        assert not unknown, f"{name} passes unknown settings {sorted(unknown)}"


def test_servers_scale_behind_nginx() -> None:
    services = compose()["services"]
    assert "ports" not in services["server"], "a fixed host port stops --scale server=3"
    assert services["server"]["expose"] == ["8000"]
    assert services["nginx"]["ports"] == ["8000:80"]
    mount = "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro"
    assert mount in services["nginx"]["volumes"]
    assert (ROOT / "deploy" / "nginx.conf").is_file()
    # the servers believe X-Forwarded-For from nginx's fixed address alone
    nginx_address = services["nginx"]["networks"]["default"]["ipv4_address"]
    assert services["server"]["environment"]["TRUSTED_PROXIES"] == nginx_address
    assert "server:8000" in (ROOT / "deploy" / "nginx.conf").read_text()


def test_named_volumes_are_declared() -> None:
    document = compose()
    declared = set(document["volumes"])
    for name, service in document["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
