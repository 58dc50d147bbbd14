"""How many connections one process may hold. Every WebSocket and event stream is an open
file, so the cap follows the open-files limit (RLIMIT_NOFILE): at startup the server raises
its soft limit to the hard one (as Go and nginx do) and keeps FD_RESERVE descriptors for
everything else (PostgreSQL and Redis pools, RabbitMQ, WebRTC sockets, uploads, logs).

MAX_CONNECTIONS = 0 takes what the limit allows; a larger MAX_CONNECTIONS than the limit
allows stops startup with a message saying what to raise (docs/OPERATIONS.md, "Many
connections"). Past the cap a new connection is refused before the upgrade with 503
`server_full` and Retry-After, instead of the accept() failures (EMFILE) that would
otherwise hit every client of the process, REST ones included."""

from __future__ import annotations

import resource

from aiohttp import web

from server.kernel.errors import ServiceUnavailable

FD_RESERVE = 1024
MIN_CONNECTIONS = 64
# RLIM_INFINITY as the hard limit: the kernel still caps descriptors at fs.nr_open.
UNLIMITED_TARGET = 1 << 20


connection_cap_key = web.AppKey("connection_cap", int)


class LimitError(RuntimeError):
    """The open-files limit cannot give MAX_CONNECTIONS (the message says what to do)."""


def raise_open_files() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # e.g. above fs.nr_open: keep what we have
            pass
    return UNLIMITED_TARGET if soft == resource.RLIM_INFINITY else soft


def connection_cap(max_connections: int) -> int:
    """The WebSocket + event stream connections this process may hold."""
    limit = raise_open_files()
    available = limit - FD_RESERVE
    if max_connections == 0:
        if available < MIN_CONNECTIONS:
            raise LimitError(
                f"the open-files limit (RLIMIT_NOFILE) is {limit}: too low for a realtime "
                f"server ({FD_RESERVE} descriptors are kept for pools and files, at least "
                f"{MIN_CONNECTIONS} more for connections); raise it: `ulimit -n 65536`, "
                "LimitNOFILE= in a systemd unit, `ulimit: nofile` in compose"
            )
        return available
    if max_connections > available:
        raise LimitError(
            f"MAX_CONNECTIONS={max_connections} needs {max_connections + FD_RESERVE} open "
            f"files but the limit (RLIMIT_NOFILE, hard) is {limit}; raise it (`ulimit -Hn`, "
            "LimitNOFILE= in a systemd unit, `ulimits: nofile` in compose) or lower "
            "MAX_CONNECTIONS (docs/OPERATIONS.md, 'Many connections')"
        )
    return max_connections


def refuse_when_full(held: int, cap: int) -> None:
    """Before an upgrade: 503 `server_full` when this process holds its cap."""
    if held >= cap:
        raise ServiceUnavailable(
            f"this server process holds its maximum of {cap} connections; retry shortly "
            "(another node may take you)",
            code="server_full",
            headers={"Retry-After": "5"},
        )
