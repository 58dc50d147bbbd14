"""A three-node RabbitMQ cluster on this machine, from the Debian package alone: each node its
own Erlang VM with its own node name, AMQP and distribution ports and data and log
directories under a temporary directory, no plugins, and one explicit Erlang cookie. The
machine's own broker (rabbit@localhost, 5672) and its configuration are never read or
touched; only epmd, the Erlang port mapper, is shared (that is what it is for).

The nodes boot in parallel (2 cores: booting is most of the cost), then rt2 and rt3 join
rt1 with `rabbitmqctl stop_app; join_cluster; start_app`, also in parallel.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from tests.support.processes import dies_with_parent
from tests.support.proxy import free_port

BIN = Path("/usr/lib/rabbitmq/bin")  # the scripts themselves (/usr/sbin wraps them in `su`)
CTL_TIMEOUT = 120.0


@dataclass
class Node:
    name: str  # rt1-<token>@localhost
    port: int
    dist_port: int
    home: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"


@dataclass
class RabbitCluster:
    directory: Path
    cookie: str
    nodes: list[Node] = field(default_factory=list)
    started_in: float = 0.0  # seconds from the first boot to a joined cluster

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def environment(self, node: Node) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        plugins = self.directory / "enabled_plugins"
        env_file = self.directory / "rabbitmq-env.conf"  # empty: not /etc/rabbitmq's
        env.update(
            HOME=str(node.home),
            RABBITMQ_NODENAME=node.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(node.port),
            RABBITMQ_DIST_PORT=str(node.dist_port),
            RABBITMQ_MNESIA_BASE=str(node.home / "mnesia"),
            RABBITMQ_LOG_BASE=str(node.home / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(plugins),
            RABBITMQ_CONF_ENV_FILE=str(env_file),
            RABBITMQ_CONFIG_FILE=str(self.directory / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.directory / "advanced.config"),
            RABBITMQ_PID_FILE=str(node.home / "pid"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                f"-setcookie {self.cookie} -kernel inet_dist_use_interface {{127,0,0,1}}"
            ),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env

    async def ctl(self, node: Node, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        """`rabbitmqctl -n <node> --erlang-cookie ... <args>`; raises with its output."""
        process = await asyncio.create_subprocess_exec(
            str(BIN / "rabbitmqctl"),
            "-n",
            node.name,
            "--erlang-cookie",
            self.cookie,
            *args,
            env=self.environment(node),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with asyncio.timeout(timeout):
                output, _ = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        text = output.decode(errors="replace")
        if process.returncode != 0:
            raise RuntimeError(f"rabbitmqctl -n {node.name} {' '.join(args)}: {text}")
        return text

    async def boot(self, node: Node) -> None:
        log = _console(node)
        try:
            node.process = await asyncio.create_subprocess_exec(
                str(BIN / "rabbitmq-server"),
                env=self.environment(node),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=dies_with_parent,
            )
        finally:
            log.close()
        await _port_open(node, timeout=90)

    async def join(self, node: Node, seed: Node, attempts: int = 3) -> None:
        """Join `node` to `seed`'s cluster. A start_app right after join_cluster now and then
        fails inside mnesia ("badmatch ... mnesia_app"); the node is then reset and joined
        again."""
        for attempt in range(1, attempts + 1):
            await self.ctl(node, "stop_app")
            await self.ctl(node, "join_cluster", seed.name)
            try:
                await self.ctl(node, "start_app")
                return
            except RuntimeError:
                if attempt == attempts:
                    raise
            await self.ctl(node, "stop_app")
            await self.ctl(node, "reset")

    async def stop_app(self, node: Node) -> None:
        await self.ctl(node, "stop_app")

    async def start_app(self, node: Node) -> None:
        await self.ctl(node, "start_app")

    async def running_nodes(self, via: Node) -> str:
        return await self.ctl(via, "cluster_status", "--formatter", "json")

    async def stop(self) -> None:
        async def stop_one(node: Node) -> None:
            process = node.process
            if process is None or process.returncode is not None:
                return
            try:
                await self.ctl(node, "stop", timeout=60)
                async with asyncio.timeout(30):
                    await process.wait()
            except (RuntimeError, TimeoutError):
                process.kill()
                await process.wait()

        await asyncio.gather(*(stop_one(node) for node in self.nodes))


async def _port_open(node: Node, timeout: float) -> None:
    """Until the node's AMQP listener accepts (it opens last in the boot); `rabbitmqctl
    await_startup` would fail before the node has registered with epmd."""
    deadline = time.monotonic() + timeout
    while True:
        if node.process is not None and node.process.returncode is not None:
            raise RuntimeError(f"{node.name} exited; see {node.home / 'console.log'}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", node.port)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{node.name} did not open port {node.port}") from None
            await asyncio.sleep(0.2)
            continue
        writer.close()
        return


def _console(node: Node) -> IO[bytes]:
    return open(node.home / "console.log", "ab")  # the child writes to it; closed after spawn


def _prepare(directory: Path, size: int) -> RabbitCluster:
    """The nodes' files: no plugins, an empty env file (not /etc/rabbitmq's), a config file
    that only quiets the console, one home (data, logs) per node."""
    if not (BIN / "rabbitmq-server").exists():
        pytest.fail("RabbitMQ is not installed: `sudo apt-get install -y rabbitmq-server`")
    directory.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(3)  # node names of their own, beside any other run's
    cluster = RabbitCluster(directory, cookie=secrets.token_hex(16).upper())
    (directory / "enabled_plugins").write_text("[].\n")
    (directory / "rabbitmq-env.conf").write_text("")
    (directory / "rabbitmq.conf").write_text("log.console = false\nlog.file.level = info\n")
    (directory / "advanced.config").write_text("[].\n")
    for n in range(1, size + 1):
        home = directory / f"rt{n}"
        home.mkdir()
        cluster.nodes.append(Node(f"rt{n}-{token}@localhost", free_port(), free_port(), home))
    return cluster


@asynccontextmanager
async def rabbit_cluster(directory: Path, size: int = 3) -> AsyncIterator[RabbitCluster]:
    """`size` joined nodes on free loopback ports; stopped (and their files left in
    `directory` for a failed test to be read) on exit."""
    cluster = _prepare(directory, size)
    started = time.monotonic()
    try:
        await asyncio.gather(*(cluster.boot(node) for node in cluster.nodes))
        seed, *others = cluster.nodes
        for node in others:  # one at a time: concurrent joins race in mnesia's schema
            await cluster.join(node, seed)
        cluster.started_in = time.monotonic() - started
        yield cluster
    finally:
        await cluster.stop()
