"""The command line: `python -m server serve|run|db|settings-docs`.

serve [--host H] [--port N] [--reuse-port]
                                  the HTTP server alone (one process)
run   [--host H] [--port N] [--processes N|auto] [--workers M]
                                  database ready, then N server processes on one port and M
                                  workers, restarted when they die (make run)
db ensure|create|info|migrate|status
settings-docs --write|--check     docs/CONFIGURATION.md and .env.example
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

import psycopg2
from sqlalchemy.exc import OperationalError as SQLAlchemyOperationalError

from server.kernel import gcwatch
from server.kernel.limits import LimitError, connection_cap
from server.kernel.settings import ConfigError, Settings, load_settings
from server.kernel.telemetry import AccessLogger, configure_logging

log = logging.getLogger("server")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server", description="Realtime server")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("serve", "run the HTTP server"), ("run", "server + worker")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--host", help="bind address (default: HOST)")
        command.add_argument("--port", type=int, help="port (default: PORT)")
    serve_command, run_command = commands.choices["serve"], commands.choices["run"]
    serve_command.add_argument(
        "--reuse-port", action="store_true", help="share the port with other processes"
    )
    run_command.add_argument("--processes", help="server processes (default: WEB_CONCURRENCY)")
    run_command.add_argument("--workers", type=int, help="workers (default: WORKER_PROCESSES)")
    db = commands.add_parser("db", help="database administration")
    db.add_argument("action", choices=["ensure", "create", "info", "migrate", "status"])
    superuser = commands.add_parser("create-superuser", help="create a superuser account")
    superuser.add_argument("--email", required=True)
    superuser.add_argument("--username", required=True)
    superuser.add_argument(
        "--password", help="default: SUPERUSER_PASSWORD, else asked for (not echoed)"
    )
    docs = commands.add_parser("settings-docs", help="generated configuration docs")
    mode = docs.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    return parser


def serve(settings: Settings, reuse_port: bool = False) -> None:
    from aiohttp import web

    from server.app import create_app

    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    gcwatch.install()  # thresholds, and slow collections logged (server/kernel/gcwatch.py)
    app = create_app(settings)  # LimitError here: the open-files limit cannot give the cap
    gcwatch.freeze_startup()  # what startup allocated is never garbage
    log.info(
        "serving %s on http://%s:%d (%s)",
        settings.APP_NAME,
        settings.HOST,
        settings.PORT,
        settings.ENVIRONMENT,
    )
    web.run_app(
        app,
        host=settings.HOST,
        port=settings.PORT,
        access_log_class=AccessLogger,
        shutdown_timeout=settings.SHUTDOWN_TIMEOUT,
        reuse_port=reuse_port or None,
        print=None,
        loop=loop,
    )
    log.info("server stopped")


def db_command(settings: Settings, action: str) -> int:
    from server import dbadmin

    if action == "ensure":
        created = dbadmin.ensure_database(settings)
        print(f"database {settings.POSTGRES_DB} {'created' if created else 'exists'}")
    elif action == "create":
        dbadmin.create_database(settings)
        print(f"database {settings.POSTGRES_DB} created")
    elif action == "migrate":
        dbadmin.ensure_database(settings)
        dbadmin.migrate(settings)
        print(f"database {settings.POSTGRES_DB} migrated to head")
    elif action == "status":
        print(json.dumps(dbadmin.status(settings), indent=2))
    else:
        print(json.dumps(dbadmin.info(settings), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "settings-docs":
        from server import settings_docs

        if args.write:
            settings_docs.write()
            return 0
        stale = settings_docs.stale_files()
        for name in stale:
            print(f"{name} is out of date: run `make settings-docs`", file=sys.stderr)
        return 1 if stale else 0

    overrides = {}
    if getattr(args, "host", None):
        overrides["HOST"] = args.host
    if getattr(args, "port", None):
        overrides["PORT"] = args.port
    if getattr(args, "processes", None):
        overrides["WEB_CONCURRENCY"] = args.processes
    if getattr(args, "workers", None) is not None:
        overrides["WORKER_PROCESSES"] = args.workers
    try:
        settings = load_settings(**overrides)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    configure_logging(settings)

    try:
        if args.command == "run":  # before any child starts (`serve` checks in create_app)
            connection_cap(settings.MAX_CONNECTIONS)
        if args.command == "serve":
            serve(settings, reuse_port=args.reuse_port)
            return 0
        if args.command == "create-superuser":
            from server.superuser import create_superuser

            return create_superuser(settings, args.email, args.username, args.password)
        if args.command == "run":
            from server.runner import run_all

            return run_all(settings, settings.HOST, settings.PORT)
        return db_command(settings, args.action)
    except LimitError as error:
        print(f"cannot start: {error}", file=sys.stderr)
        return 2
    except (psycopg2.OperationalError, SQLAlchemyOperationalError) as error:
        from server.dbadmin import diagnose

        cause = error.orig if isinstance(error, SQLAlchemyOperationalError) else error
        print(f"PostgreSQL error: {diagnose(settings, cause or error).message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
