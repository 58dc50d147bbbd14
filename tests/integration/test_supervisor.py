"""The supervisor of `python -m server run`, on real processes: a child that dies is
restarted; one that keeps dying at once stops everything with its exit code; a signal stops
every child."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from server.supervisor import Child
from tests.support.processes import dies_with_parent

ROOT = Path(__file__).resolve().parents[2]


def supervise(*commands: str) -> subprocess.Popen[str]:
    """A supervisor in its own process (it installs signal handlers) over `commands`."""
    script = (
        "import logging, sys\n"
        "from server.supervisor import Child, Supervisor\n"
        "logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        f"children = [Child(f'c{{n}}', [sys.executable, '-c', c]) for n, c in "
        f"enumerate({list(commands)!r})]\n"
        "sys.exit(Supervisor(children, stop_timeout=5).run())\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=dies_with_parent,
    )


def children_of(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def wait_for(predicate: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not callable(predicate) or not predicate():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.05)


def test_a_crash_loop_stops_everything_with_the_childs_exit_code() -> None:
    started = time.monotonic()
    process = supervise("import sys; sys.exit(3)", "import time; time.sleep(60)")
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 3, output
    assert output.count("restarting it in") == 4, output  # 0.5, 1, 2, 4 s
    assert "restarting it in 0.5 s" in output and "restarting it in 4 s" in output
    assert "giving up and stopping everything" in output
    assert time.monotonic() - started < 20


def test_a_killed_child_is_restarted_and_a_signal_stops_all() -> None:
    process = supervise("import time; time.sleep(60)", "import time; time.sleep(60)")
    try:
        wait_for(lambda: len(children_of(process.pid)) == 2)
        first = children_of(process.pid)
        victim = first[0]
        subprocess.run(["kill", "-9", str(victim)], check=True)
        wait_for(
            lambda: len(children_of(process.pid)) == 2 and victim not in children_of(process.pid)
        )
        survivors = children_of(process.pid)
        assert first[1] in survivors
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "exited with code -9; restarting it in 0.5 s" in output
    assert "stopping every process (SIGINT)" in output
    assert not [pid for pid in survivors if Path(f"/proc/{pid}").exists()]


def test_backoff_doubles_to_a_ceiling() -> None:
    child = Child("c", ["true"])
    delays = []
    for exits in range(1, 10):
        child.quick_exits = exits
        delays.append(child.backoff())
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
