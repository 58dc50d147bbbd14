"""Processes the tests start die with the test run, and one Ctrl-C stops it.

- Each child asks the kernel for SIGTERM when its parent goes (PR_SET_PDEATHSIG): pass
  `preexec_fn=dies_with_parent` to subprocess.Popen or asyncio.create_subprocess_exec.
- `interrupt_at_once` (installed by tests/conftest.py) makes SIGINT raise KeyboardInterrupt
  wherever the run is. Without it, asyncio.Runner (so pytest-asyncio) turns the first SIGINT
  into a cancellation of the running test's task, and code that swallows that cancellation
  (ours or a library's) makes the Ctrl-C vanish: the run goes on until SIGTERM. A task that
  swallows cancellations can still hold up the event loop's closing after the interrupt, so
  the first SIGINT also sets a deadline: a run still there INTERRUPT_DEADLINE seconds later
  stops what it started and exits at once (its own cleanup, e.g. dropping the test
  database, is then skipped).
- `stop_descendants` (at the end of every run, interrupted or not) sends SIGTERM to every
  process still running below pytest and SIGKILL to what is left after a grace period: a
  server or worker taking its time over a graceful shutdown, or a process started without
  `dies_with_parent`, does not outlive the run. Daemons (a restarted redis-server or
  PostgreSQL) have left the tree and are not touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def dies_with_parent() -> None:
    """Runs in the child between fork and exec (Linux)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


INTERRUPT_DEADLINE = 8.0  # seconds from the first Ctrl-C to a forced exit


class _Interrupt:
    """The SIGINT handler: KeyboardInterrupt now, and a forced exit if that is not enough."""

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._timer: threading.Timer | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self._deadline, self._force_exit)
            self._timer.daemon = True
            self._timer.start()
        raise KeyboardInterrupt

    def _force_exit(self) -> None:
        os.write(2, f"\nstill running {self._deadline:.0f}s after Ctrl-C: exiting\n".encode())
        stop_descendants(grace=1.0)
        os._exit(128 + signal.SIGINT)


def interrupt_at_once(deadline: float = INTERRUPT_DEADLINE) -> None:
    """SIGINT raises KeyboardInterrupt at once, also inside an event loop (asyncio.Runner
    installs its own handler only over Python's default one). Left alone when SIGINT is
    ignored (a run started in the background of a shell) or when not on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _Interrupt(deadline))


def _parents() -> dict[int, int]:
    """pid -> parent pid of every live (not zombie) process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state not in ("Z", "X"):
            found[int(entry.name)] = int(ppid)
    return found


def descendants(pid: int | None = None) -> list[int]:
    """Every live process below `pid` (default: this one), parents before their children."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], list(children.get(root, []))
    while todo:
        current = todo.pop(0)
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:120]


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def stop_descendants(grace: float = 3.0) -> list[str]:
    """SIGTERM every process below this one, SIGKILL those still there after `grace`
    seconds; the pid and command line of each one found."""
    pids = descendants()
    if not pids:
        return []
    stopped = [f"{pid} {_command(pid)}" for pid in pids]
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        alive = set(_parents())
        if not any(pid in alive for pid in pids):
            return stopped
        time.sleep(0.05)
    _signal_all(descendants() + [pid for pid in pids if pid in _parents()], signal.SIGKILL)
    return stopped
