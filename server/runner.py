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
PR_SET_PDEATHSIG = 1


def prepare_database(settings: Settings) -> None:
    """Create the database if missing and migrate to head, waiting a little for PostgreSQL
    (it may still be starting, e.g. under docker compose)."""
    deadline = time.monotonic() + DB_WAIT_SECONDS
    while True:
        try:
            if dbadmin.ensure_database(settings):
                log.info("created database %s", settings.POSTGRES_DB)
            break
        except psycopg2.OperationalError as error:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"PostgreSQL at {settings.POSTGRES_SERVER}:{settings.POSTGRES_PORT} is "
                    f"unreachable ({str(error).strip()}); {START_HINTS['postgres']}"
                ) from None
            log.warning("waiting for PostgreSQL: %s", str(error).strip())
            time.sleep(1)
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
