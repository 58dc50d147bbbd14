"""REST scenarios: `health` (GET /health/live, the HTTP stack alone) and `tasks`
(POST /tasks/example, then the worker completing every task through the outbox relay and
RabbitMQ, counted in PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson

from bench import accounts, loadgen
from bench.harness import Harness
from bench.report import Measurement, Percentiles, Result, Target
from bench.scenarios import Options, ScenarioError, scenario, uses_wrk

COMPLETION_TIMEOUT = 60.0
POLL_INTERVAL = 0.5
SAMPLE_SIZE = 20
JSON = {"Content-Type": "application/json"}


async def _get_live(client: aiohttp.ClientSession, n: int) -> bool:
    async with client.get("/health/live") as answer:
        await answer.read()
        return answer.status == 200


@scenario("health", "GET /health/live: N keep-alive connections, closed loop")
async def health(harness: Harness, options: Options) -> Result:
    use_wrk = uses_wrk(options)
    n = options.connections
    if use_wrk:
        url = f"{harness.base_url}/health/live"
        if options.warmup > 0:
            await loadgen.wrk(url, n, options.warmup)
        before = harness.snapshot()
        run = await loadgen.wrk(url, n, options.duration)
        after = harness.snapshot()
    else:
        async with loadgen.session(harness.base_url, n) as client:
            if options.warmup > 0:
                await loadgen.closed_loop(client, _get_live, n, options.warmup)
            before = harness.snapshot()
            run = await loadgen.closed_loop(client, _get_live, n, options.duration)
            after = harness.snapshot()
    cpu = before.until(after)
    row = Measurement(
        what="GET /health/live",
        unit="req/s",
        operations=run.ok,
        seconds=run.elapsed,
        latency_ms=run.latency_ms,
        errors=run.error_count,
        **cpu.columns(),
        details={"errors_by_kind": dict(run.errors), "services_cpu_s": cpu.services},
    )
    return Result(
        "health", "wrk" if use_wrk else "aiohttp", n, [row], cores_busy_pct=cpu.cores_busy_pct
    )


class TaskPoster:
    """POSTs example tasks and remembers the id of every accepted one."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = {**JSON, **headers}
        self.ids: list[str] = []

    async def __call__(self, client: aiohttp.ClientSession, n: int) -> bool:
        body = orjson.dumps({"seconds": 0, "payload": {"i": n}})
        async with client.post("/tasks/example", data=body, headers=self.headers) as answer:
            data = await answer.read()
            if answer.status != 202:
                raise loadgen.UnexpectedAnswer(answer.status)
            self.ids.append(orjson.loads(data)["id"])
            return True


async def _task_headers(client: aiohttp.ClientSession) -> dict[str, str]:
    """No headers when POST /tasks/example is open; a bench user's token when it answers 401."""
    async with client.post("/tasks/example", json={"seconds": 0}) as answer:
        await answer.read()
        if answer.status != 401:
            return {}
    return await accounts.bench_user_headers(client)


def _progress(harness: Harness, ids: list[str]) -> tuple[int, int, Any]:
    """(succeeded, failed, max(finished_at) of the succeeded) among `ids`."""
    with harness.db() as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE status = 'succeeded'),"
            " count(*) FILTER (WHERE status = 'failed'),"
            " max(finished_at) FILTER (WHERE status = 'succeeded')"
            " FROM tasks WHERE id = ANY(%s::uuid[])",
            (ids,),
        )
        succeeded, failed, last = cursor.fetchone()
        return int(succeeded), int(failed), last


def _latencies_ms(harness: Harness, ids: list[str]) -> list[float]:
    """created_at -> finished_at of every succeeded task, in milliseconds."""
    with harness.db() as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM finished_at - created_at) * 1000 FROM tasks"
            " WHERE id = ANY(%s::uuid[]) AND status = 'succeeded'",
            (ids,),
        )
        return [float(value) for (value,) in cursor.fetchall()]


async def _wait_done(harness: Harness, ids: list[str], timeout: float) -> tuple[int, int, Any]:
    deadline = time.monotonic() + timeout
    while True:
        succeeded, failed, last = await asyncio.to_thread(_progress, harness, ids)
        if succeeded + failed >= len(ids) or time.monotonic() > deadline:
            return succeeded, failed, last
        harness.check_alive()
        await asyncio.sleep(POLL_INTERVAL)


async def _poll_sample(
    client: aiohttp.ClientSession, ids: list[str], headers: dict[str, str], timeout: float
) -> int:
    """GET /tasks/{id} for up to SAMPLE_SIZE tasks until each is finished; count succeeded."""
    sample = ids[:: max(1, len(ids) // SAMPLE_SIZE)][:SAMPLE_SIZE]
    deadline = time.monotonic() + timeout

    async def one(task_id: str) -> bool:
        while time.monotonic() < deadline:
            async with client.get(f"/tasks/{task_id}", headers=headers) as answer:
                status = (await answer.json())["status"] if answer.status == 200 else None
            if status in ("succeeded", "failed"):
                return bool(status == "succeeded")
            await asyncio.sleep(POLL_INTERVAL)
        return False

    return sum(await asyncio.gather(*(one(task_id) for task_id in sample)))


@scenario("tasks", "POST /tasks/example closed loop, then every task completed by the worker")
async def tasks(harness: Harness, options: Options) -> Result:
    n = options.connections
    async with loadgen.session(harness.base_url, n) as client:
        headers = await _task_headers(client)
        if options.warmup > 0:  # also proves the worker consumes before we measure
            warm = TaskPoster(headers)
            warm_run = await loadgen.closed_loop(client, warm, n, options.warmup)
            succeeded, _, _ = await _wait_done(harness, warm.ids, COMPLETION_TIMEOUT)
            if not warm.ids or succeeded < len(warm.ids):
                raise ScenarioError(
                    f"warm-up: {succeeded}/{len(warm.ids)} tasks succeeded "
                    f"(errors: {dict(warm_run.errors)})"
                )
        poster = TaskPoster(headers)
        before = harness.snapshot()
        run = await loadgen.closed_loop(client, poster, n, options.duration)
        loaded = harness.snapshot()
        ids = poster.ids
        if not ids:
            raise ScenarioError(f"no task accepted ({dict(run.errors)})")
        (succeeded, failed, last), sampled = await asyncio.gather(
            _wait_done(harness, ids, COMPLETION_TIMEOUT),
            _poll_sample(client, ids, headers, COMPLETION_TIMEOUT),
        )
        done = harness.snapshot()
    latencies = await asyncio.to_thread(_latencies_ms, harness, ids)
    http_cpu, total_cpu = before.until(loaded), before.until(done)
    lost = len(ids) - succeeded
    end_to_end = (last.timestamp() - run.started_at) if last is not None else total_cpu.seconds
    accepted = Measurement(
        what="POST /tasks/example accepted (202)",
        unit="tasks/s",
        operations=run.ok,
        seconds=run.elapsed,
        latency_ms=run.latency_ms,
        errors=run.error_count,
        **http_cpu.columns(worker=True),
        details={"errors_by_kind": dict(run.errors), "services_cpu_s": http_cpu.services},
    )
    completed = Measurement(
        what="task created->finished",
        unit="tasks/s",
        operations=succeeded,
        seconds=end_to_end,
        latency_ms=Percentiles.of_ms(latencies),
        errors=lost,
        **total_cpu.columns(worker=True),
        cpu_window_s=total_cpu.seconds,  # first POST until completion was seen
        target=Target(f"all succeed <= {COMPLETION_TIMEOUT:.0f}s", lost == 0),
        details={
            "accepted": len(ids),
            "failed": failed,
            "lost": lost,
            "sampled_ok": sampled,
            "services_cpu_s": total_cpu.services,
        },
    )
    notes = [
        f"tasks: {succeeded}/{len(ids)} succeeded, {failed} failed, {lost} lost; "
        f"GET /tasks/{{id}} sample: {sampled} of {min(SAMPLE_SIZE, len(ids))} succeeded",
        f"tasks: authenticated as a bench user: {'yes' if headers else 'no (endpoint open)'}",
        "tasks: CPU ms per completed task: "
        + ", ".join(
            f"{name} {1000 * seconds / max(1, succeeded):.2f}"
            for name, seconds in {
                "server": total_cpu.server,
                "worker": total_cpu.worker,
                **total_cpu.services,
            }.items()
        ),
    ]
    return Result(
        "tasks", "aiohttp", n, [accepted, completed], notes, None, http_cpu.cores_busy_pct
    )
