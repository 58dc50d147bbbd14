"""Load generators. `closed_loop` is aiohttp's client in this process: N coroutines on one
ClientSession whose TCPConnector holds N keep-alive connections, each sending its next
request when the previous one was answered. `wrk` runs the external wrk tool (one thread,
inheriting this process's core) when it is installed; the runner never requires it."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.report import Percentiles

RequestFn = Callable[[aiohttp.ClientSession, int], Awaitable[bool]]
"""Sends request number n on the session; True when the answer was the expected one (or
raises UnexpectedAnswer to have the status counted by name)."""

REQUEST_TIMEOUT = 30.0
ERROR_BACKOFF = 0.01  # keeps a refused connection from spinning the client core


class UnexpectedAnswer(Exception):
    """An answer with the wrong status: counted as an error named `HTTP <status>`."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


@dataclass
class LoadRun:
    ok: int
    elapsed: float
    latency_ms: Percentiles | None
    started_at: float  # time.time() when the first request was sent
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def session(base_url: str, connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    return aiohttp.ClientSession(
        base_url=base_url,
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
        skip_auto_headers=("User-Agent",),
    )


async def closed_loop(
    client: aiohttp.ClientSession, request: RequestFn, connections: int, duration: float
) -> LoadRun:
    loop = asyncio.get_running_loop()
    counter = itertools.count()
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    ok = 0
    started_at = time.time()
    start = loop.time()
    deadline = start + duration

    async def connection() -> None:
        nonlocal ok
        while loop.time() < deadline:
            sent = time.perf_counter()
            try:
                good = await request(client, next(counter))
            except UnexpectedAnswer as error:
                errors[str(error)] += 1
                continue
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                errors[type(error).__name__] += 1
                await asyncio.sleep(ERROR_BACKOFF)
                continue
            if good:
                ok += 1
                latencies.append((time.perf_counter() - sent) * 1000)
            else:
                errors["unexpected answer"] += 1

    await asyncio.gather(*(connection() for _ in range(connections)))
    return LoadRun(
        ok=ok,
        elapsed=loop.time() - start,
        latency_ms=Percentiles.of_ms(latencies),
        started_at=started_at,
        errors=errors,
    )


WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50": %d, "p95": %d, "p99": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(value: str) -> str:
    """A Lua long-bracket literal holding `value` verbatim (no escaping needed)."""
    level = 1
    while (value + f"]{'=' * level}]").find(f"]{'=' * level}]") != len(value):
        level += 1
    return f"[{'=' * level}[{value}]{'=' * level}]"


def _wrk_request(method: str, headers: dict[str, str], body: bytes | None) -> str:
    lines = [f"wrk.method = {_lua_string(method)}"]
    lines += [f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()]
    if body is not None:
        lines.append(f"wrk.body = {_lua_string(body.decode())}")
    return "\n".join(lines) + "\n"


async def wrk(
    url: str,
    connections: int,
    duration: float,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> LoadRun:
    """`method` `url` (the same request every time) with wrk -t1 -cN; percentiles come from
    wrk's own histogram. The script, which may hold a bearer token, lives in a private
    temporary directory removed when wrk exits."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "report.lua"
        script.write_text(_wrk_request(method, headers or {}, body) + WRK_SCRIPT, "utf-8")
        started_at = time.time()
        process = await asyncio.create_subprocess_exec(
            "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
            "--timeout", f"{REQUEST_TIMEOUT:g}s", "-s", str(script), url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {err.decode()[-500:]}")
    lines = [x for x in out.decode().splitlines() if x.startswith("{")]
    if not lines:  # e.g. a script error: wrk prints it and exits 0
        raise RuntimeError(f"wrk printed no report: {(out + err).decode()[-500:]}")
    line = lines[-1]
    report = json.loads(line)
    errors: Counter[str] = Counter()
    for kind in ("connect", "read", "write", "status", "timeout"):
        if report[kind]:
            errors[kind] = report[kind]
    return LoadRun(
        ok=report["requests"] - report["status"],
        elapsed=report["duration_us"] / 1e6,
        latency_ms=Percentiles(report["p50"] / 1000, report["p95"] / 1000, report["p99"] / 1000),
        started_at=started_at,
        errors=errors,
    )
