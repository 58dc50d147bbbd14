"""The SDK stands alone: it imports with nothing of the server on the path, pulls in no
server dependency, its pyproject describes a package of its own (`realtime_client`, in
clients/python), and installing it leaves the source tree as it was (no build/, no
*.egg-info)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "clients" / "python"

CHECK = """
import sys
import realtime_client
from realtime_client import BinaryMessage, RealtimeError, RecoveryFailed, WSClient
from realtime_client import create_sse_client
import realtime_client.binary, realtime_client.errors, realtime_client.files
import realtime_client.sse, realtime_client.ws
assert realtime_client.__file__.startswith(sys.argv[1]), realtime_client.__file__
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


def _tree(path: Path) -> set[str]:
    return {
        str(found.relative_to(path))
        for found in path.rglob("*")
        if "__pycache__" not in found.parts
    }


def test_sdk_imports_without_the_server(tmp_path: Path) -> None:
    shutil.copytree(
        SDK / "realtime_client",
        tmp_path / "realtime_client",
        ignore=shutil.ignore_patterns("__pycache__"),
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
    project = tomllib.loads((SDK / "pyproject.toml").read_text())
    assert project["project"]["name"] == "realtime-client"
    assert [d.split(">")[0].split("=")[0] for d in project["project"]["dependencies"]] == [
        "aiohttp"
    ]
    assert project["tool"]["flit"]["module"]["name"] == "realtime_client"
    assert (SDK / "README.md").exists()
    assert (SDK / "realtime_client" / "py.typed").exists()


def test_server_distribution_does_not_ship_the_sdk() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    included = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert not [name for name in included if name.startswith(("clients", "realtime_client"))]


def test_installing_the_sdk_leaves_the_source_tree_clean(tmp_path: Path) -> None:
    before = _tree(SDK)
    target = tmp_path / "site"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile"),
            *("--target", str(target), str(SDK)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert _tree(SDK) == before, "installing left files in clients/python"
    installed = {path.name for path in target.iterdir()}
    assert "realtime_client" in installed
    assert "clients" not in installed
    assert (target / "realtime_client" / "py.typed").exists()
