"""The processes the tests start die with the test run (tests/support/processes.py): a
killed parent takes its children along, and one Ctrl-C ends a run within seconds with
nothing it started left running, so an interrupted `make test` leaves no worker or server
behind and needs no SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import INTERRUPT_DEADLINE

ROOT = Path(__file__).resolve().parents[2]

PARENT = """
import subprocess, sys, time
from tests.support.processes import dies_with_parent
child = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(60)"], preexec_fn=dies_with_parent
)
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has ended; only its reaping is pending


def test_a_killed_parent_takes_its_children_along() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=5)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the child outlived its killed parent"
    finally:
        parent.stdout.close()
        if _alive(child):
            os.kill(child, signal.SIGKILL)


# One Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops a run at once,
# and nothing it started stays behind: a child that takes its time to shut down (as a server
# or worker finishing in-flight work does) is stopped at the end of the run, and an async test
# whose cancellation is swallowed (by our code or a library's) does not make the Ctrl-C vanish.
TINY = """
import asyncio, signal, subprocess, sys, time
from tests.support.processes import dies_with_parent

STUBBORN = (
    "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
)


def start_stubborn_child():
    child = subprocess.Popen(
        [sys.executable, "-c", STUBBORN], preexec_fn=dies_with_parent, stdout=subprocess.PIPE
    )
    child.stdout.readline()
    with open("CHILD_FILE", "w") as f:
        f.write(str(child.pid))
    print("READY", flush=True)
    return child


def test_sync():
    start_stubborn_child()
    time.sleep(60)


async def test_async_swallowing_cancellation():
    start_stubborn_child()
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        pass  # as a library that turns a cancellation into something else may do
    await asyncio.sleep(60)
"""


def _one_ctrl_c(tmp_path: Path, test: str) -> tuple[float, int, str]:
    """Run one test of TINY in its own process group, send one SIGINT to the group once the
    test runs; how long the run took to end, the child's pid, and the output."""
    child_file, log = tmp_path / "child.pid", tmp_path / "output.txt"
    (tmp_path / "test_tiny.py").write_text(TINY.replace("CHILD_FILE", str(child_file)))
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    with log.open("w") as output:  # a file: a child left behind would hold a pipe open
        run = subprocess.Popen(
            [
                *(sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider"),
                *("-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "-s"),
                f"{tmp_path / 'test_tiny.py'}::{test}",
            ],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
        )
    deadline = time.monotonic() + 60
    while "READY" not in log.read_text() and run.poll() is None:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    child = int(child_file.read_text())
    os.killpg(run.pid, signal.SIGINT)
    started = time.monotonic()
    try:
        run.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    return time.monotonic() - started, child, log.read_text()


@pytest.mark.parametrize("test", ["test_sync", "test_async_swallowing_cancellation"])
def test_one_ctrl_c_stops_the_run_and_every_process_it_started(tmp_path: Path, test: str) -> None:
    took, child, output = _one_ctrl_c(tmp_path, test)
    try:
        assert took < INTERRUPT_DEADLINE + 4, f"{took:.1f}s from Ctrl-C to the end:\n{output}"
        # pytest reports the interrupt, or the deadline cut a stuck event loop short
        assert "KeyboardInterrupt" in output or "after Ctrl-C: exiting" in output, output
        deadline = time.monotonic() + 2
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), f"a child outlived the interrupted run:\n{output}"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)
