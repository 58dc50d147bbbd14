"""The recent errors of this node for the admin dashboard: a logging handler on the root
logger that keeps the last KEPT records of level ERROR and above (time, logger, message,
exception type; never a traceback), from the app's start to its cleanup."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from aiohttp import web

KEPT = 50
MAX_MESSAGE = 500


class RecentErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: deque[dict[str, Any]] = deque(maxlen=KEPT)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        self.records.append(
            {
                "at": record.created,
                "level": record.levelname,
                "logger": record.name,
                "message": message[:MAX_MESSAGE],
                "exception": record.exc_info[0].__name__
                if record.exc_info and record.exc_info[0]
                else None,
            }
        )

    def latest(self) -> list[dict[str, Any]]:
        """Newest first."""
        return list(reversed(self.records))


def attach(app: web.Application) -> RecentErrors:
    collector = RecentErrors()
    app[recent_errors_key] = collector
    logging.getLogger().addHandler(collector)
    return collector


def detach(collector: RecentErrors) -> None:
    logging.getLogger().removeHandler(collector)


def recent(app: web.Application) -> list[dict[str, Any]]:
    """This node's recent errors, newest first (none before the app started)."""
    collector = app.get(recent_errors_key)
    return [] if collector is None else collector.latest()


recent_errors_key: web.AppKey[RecentErrors] = web.AppKey("recent_errors", RecentErrors)
