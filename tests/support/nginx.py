"""The real Debian nginx running deploy/nginx.conf in front of test nodes: the file is used
as shipped, with only its listen address, its upstream servers and nginx's own paths
(pid, logs, temporary files, under a temporary directory) changed for the test."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from tests.support.processes import dies_with_parent
from tests.support.proxy import free_port
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "nginx.conf"
UPSTREAM = "        server server:8000 max_fails=1 fail_timeout=5s;\n"
LISTEN = "        listen 80;\n"
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if found is None:
        pytest.fail(
            "nginx is not installed: `sudo apt-get install -y nginx` (make test installs it)"
        )
    return found


def render(directory: Path, port: int, upstreams: list[int]) -> str:
    text = SHIPPED.read_text()
    assert UPSTREAM in text and LISTEN in text, "deploy/nginx.conf changed: update the test"
    servers = "".join(
        f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in upstreams
    )
    temp = "".join(f"    {name}_temp_path {directory / name};\n" for name in TEMP_PATHS)
    text = text.replace(UPSTREAM, servers).replace(LISTEN, f"        listen 127.0.0.1:{port};\n")
    text = text.replace("http {\n", "http {\n" + temp, 1)
    return f"pid {directory / 'nginx.pid'};\nerror_log {directory / 'error.log'} warn;\n{text}"


def prepare(directory: Path, port: int, upstreams: list[int]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o777)  # nginx's workers (www-data when we are root) write temp files here
    config = directory / "nginx.conf"
    config.write_text(render(directory, port, upstreams))
    return config


@asynccontextmanager
async def nginx(directory: Path, upstreams: list[int]) -> AsyncIterator[str]:
    """nginx on a free port proxying to `upstreams`; yields its base URL."""
    binary = nginx_binary()
    port = free_port()
    config = prepare(directory, port, upstreams)
    process = await asyncio.create_subprocess_exec(
        binary,
        "-p",
        str(directory),
        "-c",
        str(config),
        "-e",
        str(directory / "error.log"),
        "-g",
        "daemon off;",
        preexec_fn=dies_with_parent,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:

            async def up() -> bool:
                assert process.returncode is None, (directory / "error.log").read_text()
                try:
                    async with session.get(f"{base}/health/live") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(up, timeout=15, interval=0.2)
        yield base
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
