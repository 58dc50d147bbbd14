"""`python -m workers`: run the worker until SIGINT or SIGTERM.
`python -m workers dlq ...`: inspect and repair the dead-letter queues (workers/dlq.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from server.kernel.settings import ConfigError, Settings, load_settings
from server.kernel.telemetry import configure_logging, configure_tracing
from workers import dlq
from workers.process import worker_running

log = logging.getLogger("workers")


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker_running(settings) as worker:
        log.info("worker %s started (prefetch %d)", worker.worker_id, settings.WORKER_PREFETCH)
        await stop.wait()
        log.info("worker stopping: finishing in-flight jobs")
    log.info("worker stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    dlq.add_arguments(commands)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    configure_logging(settings)
    if args.command == "dlq":
        return asyncio.run(dlq.run(settings, args))
    if settings.tracing_active:
        configure_tracing(settings, instrument_aiohttp=False)
    try:
        import uvloop

        uvloop.run(serve(settings))
    except ImportError:  # pragma: no cover - uvloop is installed wherever it builds
        asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
