"""`python -m server run`: prepare the database, then run the server and the worker as two
child processes until SIGINT or SIGTERM, which stops both gracefully (`make run`)."""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import time
from types import FrameType

import psycopg2

from server import dbadmin
from server.kernel.settings import Settings
from server.monitor import START_HINTS

log = logging.getLogger(__name__)

DB_WAIT_SECONDS = 30.0
REPORT_SECONDS = 5.0
PR_SET_PDEATHSIG = 1


def prepare_database(settings: Settings) -> None:
    """Create the database if missing and migrate to head, waiting a little for PostgreSQL
    (it may still be starting, e.g. under docker compose). One line when the wait starts,
    one every REPORT_SECONDS while it lasts; errors that waiting cannot fix stop at once."""
    wait_seconds = DB_WAIT_SECONDS
    deadline = time.monotonic() + wait_seconds
    next_report: float | None = None
    while True:
        try:
            if dbadmin.ensure_database(settings):
                log.info("created database %s", settings.POSTGRES_DB)
            break
        except psycopg2.OperationalError as error:
            problem = dbadmin.diagnose(settings, error)
            now = time.monotonic()
            if not problem.transient:
                raise SystemExit(problem.message) from None
            if now >= deadline:
                raise SystemExit(
                    f"gave up waiting for PostgreSQL after {wait_seconds:g} s: {problem.message}"
                    + (f"; {START_HINTS['postgres']}" if problem.refused else "")
                ) from None
            if next_report is None:
                log.warning("%s; waiting up to %g s for it", problem.message, wait_seconds)
                next_report = now + REPORT_SECONDS
            elif now >= next_report:
                log.warning(
                    "still waiting for PostgreSQL (%.0f s left): %s",
                    deadline - now,
                    problem.message,
                )
                next_report = now + REPORT_SECONDS
            time.sleep(min(1.0, max(0.0, deadline - now)))
    if next_report is not None:
        log.info("PostgreSQL at %s:%s is up", settings.POSTGRES_SERVER, settings.POSTGRES_PORT)
    dbadmin.migrate(settings)
    log.info("database %s is at the latest migration", settings.POSTGRES_DB)


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the runner dies, even by SIGKILL (Linux),
    so a killed `make run` never leaves a server or worker behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the runner's own handlers still apply
        pass


def run_all(settings: Settings, host: str, port: int) -> int:
    prepare_database(settings)
    python = sys.executable
    children = {
        "server": subprocess.Popen(
            [python, "-m", "server", "serve", "--host", host, "--port", str(port)],
            preexec_fn=_die_with_parent,
        ),
        "worker": subprocess.Popen([python, "-m", "workers"], preexec_fn=_die_with_parent),
    }
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            log.info("stopping server and worker (%s)", signal.Signals(signum).name)
        stopping = True
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    exit_code = 0
    while not stopping:
        for name, child in children.items():
            code = child.poll()
            if code is not None and not stopping:
                log.error("%s exited with code %s; stopping the other process", name, code)
                exit_code = code or 1
                stop(signal.SIGTERM, None)
        time.sleep(0.1)

    deadline = time.monotonic() + settings.SHUTDOWN_TIMEOUT + settings.WORKER_SHUTDOWN_TIMEOUT + 5
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("%s did not stop in time; killing it", name)
            child.kill()
            child.wait()
    return exit_code
