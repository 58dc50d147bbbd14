"""Keeps a set of child processes running (`python -m server run`): server nodes on one port
and workers. A child that exits unasked is restarted after a backoff that doubles with each
quick exit (0.5 s up to 30 s; a child that ran STABLE_SECONDS starts again from 0.5 s), one
log line per event. A crash loop (GIVE_UP_AFTER quick exits in a row: a taken port, a bad
setting) stops everything with the child's exit code rather than restarting forever.

SIGINT or SIGTERM sends SIGTERM to every child once, waits the shutdown timeout, then kills
what is left. Children get SIGTERM if the supervisor itself dies (Linux PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import time
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
STABLE_SECONDS = 30.0
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
GIVE_UP_AFTER = 5
TICK = 0.1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the supervisor dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the supervisor's own handlers still apply
        pass


@dataclass
class Child:
    """One supervised process: how to start it, and its restart record."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_exits: int = 0
    restart_at: float | None = None
    restarts: int = 0

    def start(self) -> None:
        # The argv is ours (sys.executable and fixed module names), never user input.
        self.process = subprocess.Popen(  # noqa: S603
            self.argv, env=self.env, preexec_fn=_die_with_parent
        )
        self.started_at = time.monotonic()
        self.restart_at = None

    def backoff(self) -> float:
        return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2.0 ** max(0, self.quick_exits - 1)))


class Supervisor:
    def __init__(self, children: list[Child], stop_timeout: float) -> None:
        self.children = children
        self.stop_timeout = stop_timeout
        self.stopping = False
        self.exit_code = 0

    def run(self) -> int:
        """Start every child, keep them running until a signal or a crash loop; the exit
        code is 0 after a signal, the failing child's code after a crash loop."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        for child in self.children:
            child.start()
        log.info("started %s", ", ".join(self._describe(child) for child in self.children))
        while not self.stopping:
            self._tend(time.monotonic())
            time.sleep(TICK)
        self._wait_all()
        return self.exit_code

    def _describe(self, child: Child) -> str:
        pid = child.process.pid if child.process is not None else "-"
        return f"{child.name} (pid {pid})"

    def _tend(self, now: float) -> None:
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at and not self.stopping:
                    child.restarts += 1
                    child.start()
                    log.info("restarted %s", self._describe(child))
                    if self._signalled():  # a signal came in while it started: stop it too
                        self._stop_children()
                continue
            code = child.process.poll() if child.process is not None else None
            if code is None:
                continue
            quick = now - child.started_at < STABLE_SECONDS
            child.quick_exits = child.quick_exits + 1 if quick else 1
            if child.quick_exits >= GIVE_UP_AFTER:
                log.error(
                    "%s exited with code %s, %d times in a row within %g s of starting: "
                    "giving up and stopping everything",
                    self._describe(child),
                    code,
                    child.quick_exits,
                    STABLE_SECONDS,
                )
                # killed by a signal (negative code): the shell's 128 + signal number
                self.exit_code = code if code > 0 else 128 - code if code < 0 else 1
                self._stop_children()
                return
            delay = child.backoff()
            log.error(
                "%s exited with code %s; restarting it in %g s", self._describe(child), code, delay
            )
            child.restart_at = now + delay

    def _signalled(self) -> bool:
        """Whether a signal handler has set `stopping` (a method: it may change at any time)."""
        return self.stopping

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("stopping every process (%s)", signal.Signals(signum).name)
        self._stop_children()

    def _stop_children(self) -> None:
        self.stopping = True
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)

    def _wait_all(self) -> None:
        deadline = time.monotonic() + self.stop_timeout
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("%s did not stop in time; killing it", self._describe(child))
                child.process.kill()
                child.process.wait()
