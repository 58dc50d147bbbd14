"""The SDK stands alone: it imports with nothing of the server on the path, pulls in no
server dependency, and its pyproject describes a package of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import sys
import clients
from clients import BinaryMessage, RealtimeError, RecoveryFailed, WSClient, create_sse_client
import clients.binary, clients.errors, clients.files, clients.sse, clients.ws
assert clients.__file__.startswith(sys.argv[1]), clients.__file__
unwanted = {"server", "handlers", "storage", "workers", "signaling", "orjson", "pydantic", "redis"}
assert not unwanted & {name.split(".")[0] for name in sys.modules}, sorted(sys.modules)
for name in ("server", "handlers", "storage", "workers"):
    try:
        __import__(name)
    except ModuleNotFoundError:
        continue
    raise SystemExit(f"{name} is importable: the check is not isolated")
print("ok")
"""


def test_sdk_imports_without_the_server(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "clients", tmp_path / "clients", ignore=shutil.ignore_patterns("__pycache__")
    )
    site_packages = sysconfig.get_paths()["purelib"]
    result = subprocess.run(
        [sys.executable, "-S", "-c", CHECK, str(tmp_path)],  # -S: no .pth (editable installs)
        env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{site_packages}", "PATH": os.defpath},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_pyproject_makes_an_aiohttp_only_package() -> None:
    project = tomllib.loads((ROOT / "clients" / "pyproject.toml").read_text())
    assert project["project"]["name"] == "realtime-client"
    assert [d.split(">")[0].split("=")[0] for d in project["project"]["dependencies"]] == [
        "aiohttp"
    ]
    assert project["tool"]["setuptools"]["packages"] == ["clients"]
    assert (ROOT / "clients" / "README.md").exists()
