"""`python -m server run` (what `make run` starts) on a database that does not exist yet:
it creates and migrates it, serves, runs tasks through the worker, and stops both processes
cleanly on SIGTERM or SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from server import dbadmin
from server.kernel.settings import Settings
from tests.support import http
from tests.support.processes import dies_with_parent
from tests.support.proxy import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_database(base_settings: Settings) -> Iterator[str]:
    name = f"rt_e2e_{uuid.uuid4().hex[:8]}"
    yield name
    dbadmin.drop_database(base_settings, name)


def start(database: str, settings: Settings, port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "POSTGRES_DB": database,
        "REDIS_PREFIX": settings.REDIS_PREFIX,
        "AMQP_PREFIX": settings.AMQP_PREFIX,
        "ENVIRONMENT": "test",
        "PORT": str(port),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "server", "run"],
        cwd=ROOT,
        preexec_fn=dies_with_parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_ready(base: str, process: subprocess.Popen[str], timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if http.get(f"{base}/health/ready", timeout=3)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("server did not become ready")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_run_prepares_database_serves_and_stops_cleanly(
    base_settings: Settings, fresh_database: str, stop_signal: signal.Signals
) -> None:
    assert not dbadmin.database_exists(base_settings, fresh_database)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start(fresh_database, base_settings, port)
    try:
        wait_ready(base, process)
        assert dbadmin.database_exists(base_settings, fresh_database)
        headers = http.register_and_log_in(
            base, f"e2e{uuid.uuid4().hex[:8]}", "a long e2e passphrase"
        )
        _, task = http.post(
            f"{base}/tasks/example", {"seconds": 0.1, "payload": "e2e"}, headers=headers
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            _, state = http.get(f"{base}/tasks/{task['id']}", headers=headers)
            if state["status"] == "succeeded":
                break
            time.sleep(0.2)
        assert state["status"] == "succeeded"
        assert state["result"]["echo"] == "e2e"

        started = time.monotonic()
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=20)
        elapsed = time.monotonic() - started
    finally:
        if process.poll() is None:  # a failed assertion above: never leave children behind
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert process.returncode == 0, output
    assert elapsed < 10, f"took {elapsed:.1f}s to stop"
    assert "server stopped" in output
    assert "worker stopped" in output
    assert "Traceback" not in output


def test_children_die_with_a_killed_runner(base_settings: Settings, fresh_database: str) -> None:
    """Even SIGKILL (which the runner cannot handle) leaves no server or worker behind."""
    port = free_port()
    process = start(fresh_database, base_settings, port)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        children = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) == 2
        process.kill()
        process.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(
            Path(f"/proc/{pid}").exists() for pid in children
        ):
            time.sleep(0.2)
        assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
