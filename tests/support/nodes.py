"""Server nodes as real processes (`python -m server serve`, uvloop as in production) sharing
the test session's database, Redis prefix and AMQP prefix: the e2e tests of several nodes
and the tests that restart a shared service under load start them here. Each node keeps its
log lines with the time (monotonic, this process's clock) they were read, so a test can say
when the server noticed something."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.processes import dies_with_parent
from tests.support.proxy import free_port
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


class Node:
    def __init__(self, port: int, process: asyncio.subprocess.Process) -> None:
        self.port = port
        self.process = process
        self.base = f"http://127.0.0.1:{port}"
        self.lines: list[tuple[float, str]] = []  # (time.monotonic() when read, line)

    def kill(self) -> None:
        self.process.kill()

    async def read_log(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip()))

    def first_line_after(self, since: float, text: str) -> float | None:
        """When a line containing `text` was read at or after `since`."""
        return next((at for at, line in self.lines if at >= since and text in line), None)

    def log_text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def node_env(settings: Any, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "POSTGRES_DB": settings.POSTGRES_DB,
        "REDIS_PREFIX": settings.REDIS_PREFIX,
        "AMQP_PREFIX": settings.AMQP_PREFIX,
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


async def ready(session: aiohttp.ClientSession, base: str) -> bool:
    try:
        async with session.get(f"{base}/health/ready") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def _start(settings: Any, env: dict[str, str]) -> Node:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "serve",
        "--port",
        str(port),
        cwd=ROOT,
        env=node_env(settings, **env),
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        preexec_fn=dies_with_parent,
    )
    return Node(port, process)


@asynccontextmanager
async def server_nodes(settings: Any, count: int, **env: str) -> AsyncIterator[list[Node]]:
    """`count` nodes on free ports, ready when yielded, stopped (SIGTERM, then SIGKILL)
    after; a node the test killed is simply reaped."""
    nodes = [await _start(settings, env) for _ in range(count)]
    readers = [asyncio.ensure_future(node.read_log()) for node in nodes]
    try:
        async with aiohttp.ClientSession() as session:

            async def all_ready() -> bool:
                return all([await ready(session, node.base) for node in nodes])

            await eventually(all_ready, timeout=30, interval=0.2)
        yield nodes
    finally:
        for node in nodes:
            if node.process.returncode is None:
                node.process.send_signal(signal.SIGTERM)
        for node in nodes:
            try:
                await asyncio.wait_for(node.process.wait(), 15)
            except TimeoutError:
                node.process.kill()
                await node.process.wait()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


@asynccontextmanager
async def server_process(settings: Any, **env: str) -> AsyncIterator[Node]:
    """One node, logging at INFO (unless `env` says otherwise)."""
    async with server_nodes(settings, 1, **{"LOG_LEVEL": "INFO", **env}) as [node]:
        yield node
