"""A real Redis Cluster for tests: three masters with one replica each, six `redis-server`
processes on free loopback ports (cluster-enabled, own temporary directories, nothing saved),
joined by `redis-cli --cluster create`. Started once per session, only by a test that asks
for the `redis_cluster` fixture (tests/conftest.py; REDIS_TEST_CLUSTER=1 makes every test
ask), and stopped at the end. A module may start one of its own and kill its masters
(`kill_master`: tests/integration/test_redis_cluster_failover.py)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.processes import dies_with_parent
from tests.support.proxy import free_port

NODES = 6
NODE_TIMEOUT_MS = 1500  # how long a master may be silent before its replica takes over


@dataclass
class RedisClusterNodes:
    directory: Path
    ports: list[int]
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The REDIS_URL naming this cluster (every node as a seed)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def cli(self, port: int, *args: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(port), *args],
            capture_output=True,
            timeout=10,
            check=True,
        )
        return done.stdout.decode()

    def masters(self) -> list[int]:
        """The ports of the nodes that are masters now (asked of a live node)."""
        for port in self.ports:
            if port in self.processes and self.processes[port].poll() is None:
                lines = self.cli(port, "cluster", "nodes").splitlines()
                return [
                    int(line.split()[1].split("@")[0].rsplit(":", 1)[1])
                    for line in lines
                    if "master" in line.split()[2] and "fail" not in line.split()[2]
                ]
        raise RuntimeError("no cluster node is running")

    def kill_master(self, port: int) -> None:
        """SIGKILL one master: its replica is promoted after NODE_TIMEOUT_MS."""
        self.processes[port].send_signal(signal.SIGKILL)
        self.processes[port].wait(5)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every live node says cluster_state:ok and sees every slot served."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                live = [p for p in self.ports if self.processes[p].poll() is None]
                if all("cluster_state:ok" in self.cli(port, "cluster", "info") for port in live):
                    return
            except subprocess.SubprocessError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the Redis cluster did not reach cluster_state:ok")
            time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def _start_node(directory: Path, port: int) -> subprocess.Popen[bytes]:
    own = directory / str(port)
    own.mkdir()
    return subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(NODE_TIMEOUT_MS),
            "--dir",
            str(own),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(own / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=dies_with_parent,
    )


def start_cluster() -> RedisClusterNodes:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server is not installed: `sudo apt-get install -y redis-server`")
    nodes = RedisClusterNodes(Path(tempfile.mkdtemp(prefix="redis-cluster-")), [])
    try:
        for _ in range(NODES):
            port = free_port()
            while port in nodes.ports or port + 10000 > 65535:  # the bus port is port+10000
                port = free_port()
            nodes.ports.append(port)
            nodes.processes[port] = _start_node(nodes.directory, port)
        for port in nodes.ports:
            _wait_ping(nodes, port)
        _create(nodes)
        nodes.wait_ok()
        _wait_replicas(nodes)
    except BaseException:
        nodes.stop()
        raise
    return nodes


def _create(nodes: RedisClusterNodes, attempts: int = 2) -> None:
    """`redis-cli --cluster create`; once seen failing on a busy machine, so a failed
    attempt is undone (CLUSTER RESET HARD on every node) and tried again."""
    for attempt in range(attempts):
        created = subprocess.run(
            ["redis-cli", "--cluster", "create"]
            + [f"127.0.0.1:{port}" for port in nodes.ports]
            + ["--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True,
            timeout=60,
        )
        if created.returncode == 0:
            return
        if attempt + 1 == attempts:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout!r}")
        for port in nodes.ports:
            nodes.cli(port, "flushall")
            nodes.cli(port, "cluster", "reset", "hard")
        time.sleep(1)


def _wait_ping(nodes: RedisClusterNodes, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if "PONG" in nodes.cli(port, "ping"):
                return
        except subprocess.SubprocessError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"redis-server on port {port} did not start")
        time.sleep(0.05)


def _wait_replicas(nodes: RedisClusterNodes, timeout: float = 30.0) -> None:
    """Until every replica has synced with its master (a failover needs a synced one)."""
    deadline = time.monotonic() + timeout
    while True:
        infos = [nodes.cli(port, "info", "replication") for port in nodes.ports]
        replicas = [info for info in infos if "role:slave" in info]
        if len(replicas) == NODES // 2 and all(
            "master_link_status:up" in info for info in replicas
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the Redis cluster's replicas did not sync")
        time.sleep(0.2)
