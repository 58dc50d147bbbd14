"""`python -m server run`: prepare the database, then run WEB_CONCURRENCY server processes
and WORKER_PROCESSES workers under the supervisor (server/supervisor.py) until SIGINT or
SIGTERM, which stops them all gracefully (`make run`)."""

from __future__ import annotations

import logging
import os
import sys
import time

import psycopg2

from server import dbadmin
from server.kernel.settings import Settings
from server.monitor import START_HINTS
from server.supervisor import Child, Supervisor

log = logging.getLogger(__name__)

DB_WAIT_SECONDS = 30.0
REPORT_SECONDS = 5.0


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


def children(settings: Settings, host: str, port: int) -> list[Child]:
    """WEB_CONCURRENCY server nodes on one port (SO_REUSEPORT when more than one) and
    WORKER_PROCESSES workers, of which only the first polls Telegram."""
    python = sys.executable
    servers = settings.server_processes()
    serve = [python, "-m", "server", "serve", "--host", host, "--port", str(port)]
    if servers > 1:
        serve.append("--reuse-port")
    named = [Child(f"server-{n + 1}" if servers > 1 else "server", serve) for n in range(servers)]
    for n in range(settings.WORKER_PROCESSES):
        env = None if n == 0 else {**os.environ, "TELEGRAM_POLLING": "false"}
        if env is not None and settings.WORKER_METRICS_PORT:  # one listener port each
            env["WORKER_METRICS_PORT"] = str(settings.WORKER_METRICS_PORT + n)
        name = f"worker-{n + 1}" if settings.WORKER_PROCESSES > 1 else "worker"
        named.append(Child(name, [python, "-m", "workers"], env))
    return named


def run_all(settings: Settings, host: str, port: int) -> int:
    prepare_database(settings)
    stop_timeout = settings.SHUTDOWN_TIMEOUT + settings.WORKER_SHUTDOWN_TIMEOUT + 5
    return Supervisor(children(settings, host, port), stop_timeout).run()
