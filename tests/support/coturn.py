"""The real coturn (Debian's `coturn` package, binary `turnserver`) on loopback for tests:
TURN REST API credentials (`use-auth-secret`), free ports, its log and pid file in a
temporary directory, loopback peers allowed; no TLS, no DTLS, no CLI, no config file."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import dies_with_parent
from tests.support.waiting import eventually

TURNSERVER = "turnserver"
REALM = "realtime.test"
RELAY_PORTS = 200  # relay (allocation) ports per instance


@dataclass(frozen=True)
class Coturn:
    port: int
    secret: str
    log: Path

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    @property
    def stun_url(self) -> str:
        return f"stun:127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def turnserver_binary() -> str:
    found = shutil.which(TURNSERVER) or shutil.which("/usr/bin/turnserver")
    if found is None:
        pytest.fail(
            "coturn is not installed: `sudo apt-get install -y coturn` (make test installs it)"
        )
    return found


def free_udp_and_tcp_port() -> int:
    """A loopback port free for both UDP and TCP (coturn listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


@asynccontextmanager
async def coturn(directory: Path, secret: str, *more_secrets: str) -> AsyncIterator[Coturn]:
    """turnserver on 127.0.0.1 (a free port, UDP and TCP), relaying from 127.0.0.1 on a
    random range of ports (coturn skips any that are taken); stopped on the way out. Every
    secret is accepted (`more_secrets`: a rotation in progress)."""
    binary = turnserver_binary()
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    port = free_udp_and_tcp_port()
    low = random.randrange(20000, 60000 - RELAY_PORTS)
    server = Coturn(port=port, secret=secret, log=directory / "turnserver.log")
    process = await asyncio.create_subprocess_exec(
        binary,
        "-n",  # no configuration file
        "--listening-ip=127.0.0.1",
        f"--listening-port={port}",
        "--relay-ip=127.0.0.1",
        f"--min-port={low}",
        f"--max-port={low + RELAY_PORTS - 1}",
        "--use-auth-secret",
        *(f"--static-auth-secret={s}" for s in (secret, *more_secrets)),
        f"--realm={REALM}",
        "--fingerprint",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--allow-loopback-peers",
        f"--userdb={directory / 'turndb'}",
        f"--pidfile={directory / 'turnserver.pid'}",
        f"--log-file={server.log}",
        "--simple-log",
        "--no-stdout-log",
        "--verbose",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=dies_with_parent,
    )
    try:

        async def up() -> bool:
            assert process.returncode is None, server.log_text()[-3000:]
            return await _listening(port)

        await eventually(up, timeout=15, interval=0.1)
        yield server
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
