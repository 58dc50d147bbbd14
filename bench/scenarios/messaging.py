"""Messaging scenarios: POST /messaging/user-notification as a superuser, through the whole
pipeline (one statement stores the message and its outbox row; the relay in the server
publishes it to RabbitMQ with confirms; the worker stores the notification with its inbox row
in one statement and pushes it to `user:<id>`).

`messaging-throughput`: closed loop on N connections for D seconds, then wait until the worker
processed every accepted message (PostgreSQL: messages.status/processed_at); end-to-end
msgs/s, created->processed latency from the database, losses and duplicates.

`messaging-latency`: open loop at 200 msgs/s for D seconds while the target user's WebSocket
is subscribed to `user:<id>`; latency = POST sent -> notification read on the WebSocket."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
import orjson

from bench import accounts, loadgen
from bench import messaging as msg
from bench import realtime as rt
from bench.harness import Harness
from bench.report import Measurement, Percentiles, Result, Target
from bench.scenarios import Options, ScenarioError, scenario, uses_wrk
from bench.system import CpuDelta
from bench.wsclient import WebSocket

COMPLETION_TIMEOUT = 60.0  # accepted but not processed this long after the load: lost
THROUGHPUT_TARGET = 2000.0  # msgs/s end to end
LATENCY_RATE = 200.0  # msgs/s offered in messaging-latency
LATENCY_P95_MS = 50.0
DRAIN_TIMEOUT = 15.0  # seconds for the last notifications to reach the WebSocket
WRK_SETTLE = 0.5  # seconds for the requests under way when wrk stopped to commit
FOREIGN_WARN_PCT = 15.0  # busy time of the machine outside our processes and the services
_perf_ns = time.perf_counter_ns


def _cpu_note(name: str, cpu: CpuDelta, count: int) -> str:
    parts = {
        "server": cpu.server,
        "worker": cpu.worker,
        "generator": cpu.client,
        **cpu.services,
    }
    per = ", ".join(f"{key} {1000 * value / max(1, count):.2f}" for key, value in parts.items())
    foreign = 100 * max(0.0, cpu.other - sum(cpu.services.values())) / cpu.seconds
    verdict = "disturbed by other work" if foreign > FOREIGN_WARN_PCT else "quiet"
    return (
        f"{name}: CPU ms per message ({count:,} messages, {cpu.seconds:.1f}s window): {per}; "
        f"busy time outside these processes (kernel, other work on the machine): "
        f"{foreign:.0f}% of a core ({verdict}; a quiet run has ~2-11%)"
    )


def _cpu_details(cpu: CpuDelta) -> dict[str, object]:
    return {
        "services_cpu_s": cpu.services,
        "worker_cpu_pct": round(100 * cpu.worker / cpu.seconds, 1) if cpu.seconds else None,
        "cores_busy_pct": cpu.cores_busy_pct,
    }


async def _accounts(
    harness: Harness, client: aiohttp.ClientSession
) -> tuple[dict[str, str], int, dict[str, str]]:
    admin = await accounts.bench_admin_headers(harness, client)
    user_id, user_headers = await msg.target_user(client)
    return admin, user_id, user_headers


async def _admin_id(client: aiohttp.ClientSession, headers: dict[str, str]) -> int:
    async with client.get("/users/me", headers=headers) as answer:
        return int((await answer.json())["id"])


async def _cleanup(harness: Harness, user_ids: list[int], notes: list[str]) -> None:
    try:
        await asyncio.to_thread(msg.cleanup, harness, user_ids)
    except Exception as error:  # reported, never fatal: the figures are already taken
        notes.append(f"cleanup of the benchmark rows failed: {error}")


# -- messaging-throughput ----------------------------------------------------------------------
@scenario(
    "messaging-throughput",
    "POST /messaging/user-notification closed loop, then every message processed by the worker",
)
async def messaging_throughput(harness: Harness, options: Options) -> Result:
    return await _throughput(
        harness,
        options,
        "messaging-throughput",
        msg.Poster,
        "POST /messaging/user-notification accepted (202)",
        target=True,
    )


@scenario(
    "messaging-batch-throughput",
    f"POST /messaging/batch ({msg.BATCH} notifications each) closed loop, then every message "
    "processed by the worker",
)
async def messaging_batch_throughput(harness: Harness, options: Options) -> Result:
    return await _throughput(
        harness,
        options,
        "messaging-batch-throughput",
        msg.BatchPoster,
        f"POST /messaging/batch, {msg.BATCH} per request, accepted (202)",
        target=False,  # the target is for one message per request
    )


async def _load(
    harness: Harness,
    client: aiohttp.ClientSession,
    wrk: bool,
    connections: int,
    poster: msg.Poster | msg.BatchPoster,
    duration: float,
) -> loadgen.LoadRun:
    """One closed-loop phase of `poster`'s requests: wrk repeating its fixed request, or
    aiohttp's client in this process."""
    if not wrk:
        return await loadgen.closed_loop(client, poster, connections, duration)
    url = f"{harness.base_url}{poster.path}"
    body = poster.fixed_body()
    return await loadgen.wrk(
        url, connections, duration, method="POST", headers=poster.headers, body=body
    )


async def _accepted(
    harness: Harness,
    wrk: bool,
    poster: msg.Poster | msg.BatchPoster,
    created_by: int,
    since: datetime,
) -> list[str]:
    """Ids of the messages a _load() phase got accepted: read from the answers (aiohttp), or
    from the database (wrk does not hand the answers' bodies back)."""
    if not wrk:
        return poster.ids
    await asyncio.sleep(WRK_SETTLE)
    return await asyncio.to_thread(msg.ids_since, harness, created_by, since)


async def _throughput(
    harness: Harness,
    options: Options,
    name: str,
    poster_class: type[msg.Poster | msg.BatchPoster],
    what: str,
    *,
    target: bool,
) -> Result:
    n = options.connections
    wrk = uses_wrk(options)
    notes: list[str] = []
    async with loadgen.session(harness.base_url, n) as client:
        admin, user_id, _ = await _accounts(harness, client)
        owners = [await _admin_id(client, admin), user_id]
        try:
            if options.warmup > 0:  # also proves the relay and the worker run
                warm = poster_class(admin, user_id)
                since = await asyncio.to_thread(msg.db_now, harness)
                warm_run = await _load(harness, client, wrk, n, warm, options.warmup)
                warm_ids = await _accepted(harness, wrk, warm, owners[0], since)
                processed, _, _ = await msg.wait_processed(harness, warm_ids, COMPLETION_TIMEOUT)
                if not warm_ids or processed < len(warm_ids):
                    raise ScenarioError(
                        f"warm-up: {processed}/{len(warm_ids)} messages processed "
                        f"(errors: {dict(warm_run.errors)})"
                    )
            poster = poster_class(admin, user_id)
            backlog = msg.Backlog()
            stop_sampling = asyncio.Event()
            sampler = asyncio.create_task(msg.sample_backlog(harness, backlog, stop_sampling))
            pg_before = await asyncio.to_thread(msg.pg_counters, harness)
            since = await asyncio.to_thread(msg.db_now, harness)
            before = harness.snapshot()
            run = await _load(harness, client, wrk, n, poster, options.duration)
            loaded = harness.snapshot()
            ids = await _accepted(harness, wrk, poster, owners[0], since)
            if not ids:
                raise ScenarioError(f"no message accepted ({dict(run.errors)})")
            at_end_of_load = (
                backlog.outbox[-1] if backlog.outbox else None,
                backlog.queue[-1] if backlog.queue else None,
            )
            processed, dead, last = await msg.wait_processed(harness, ids, COMPLETION_TIMEOUT)
            done = harness.snapshot()
            await asyncio.sleep(1.1)  # the backends flush their statistics once a second
            pg_after = await asyncio.to_thread(msg.pg_counters, harness)
            stop_sampling.set()
            await sampler
            result = await asyncio.to_thread(msg.outcome, harness, ids)
        finally:
            await _cleanup(harness, owners, notes)
    http_cpu, total_cpu = before.until(loaded), before.until(done)
    lost = len(ids) - processed
    end_to_end = (last - run.started_at) if last is not None else total_cpu.seconds
    rate = processed / end_to_end if end_to_end > 0 else 0.0
    errors = lost + result.duplicates
    accepted = Measurement(
        what=what,
        unit="msgs/s",
        operations=len(ids),
        seconds=run.elapsed,
        latency_ms=run.latency_ms,
        errors=run.error_count,
        **http_cpu.columns(worker=True),
        details={"errors_by_kind": dict(run.errors), **_cpu_details(http_cpu)},
    )
    completed = Measurement(
        what="message first POST -> last processed (end to end)",
        unit="msgs/s",
        operations=processed,
        seconds=end_to_end,
        latency_ms=Percentiles.of_ms(result.latencies_ms),
        errors=errors,
        **total_cpu.columns(worker=True),
        cpu_window_s=total_cpu.seconds,
        target=Target(
            f">= {THROUGHPUT_TARGET:,.0f} msgs/s end to end, 0 lost, 0 duplicates",
            rate >= THROUGHPUT_TARGET and errors == 0,
        )
        if target
        else Target("0 lost, 0 duplicates", errors == 0),
        details={
            "accepted": len(ids),
            "processed": processed,
            "dead": dead,
            "lost": lost,
            "duplicates": result.duplicates,
            "notification_rows": result.notifications,
            "inbox_rows": result.inbox,
            "outbox_rows_at_end_of_load": at_end_of_load[0],
            "queue_ready_at_end_of_load": at_end_of_load[1],
            "outbox_samples": backlog.outbox,
            "queue_samples": backlog.queue,
            **_cpu_details(total_cpu),
        },
    )
    drain = end_to_end - run.elapsed
    notes += [
        f"{name}: {processed:,}/{len(ids):,} processed, {dead} dead-lettered, "
        f"{lost} lost (not processed {COMPLETION_TIMEOUT:.0f}s after the load), "
        f"{result.duplicates} duplicated; {result.notifications:,} notification rows, "
        f"{result.inbox:,} inbox rows; the last message was processed {drain:.1f}s after the "
        f"load stopped",
        f"{name}: backlog at the end of the load: outbox {at_end_of_load[0]} "
        f"rows, RabbitMQ {at_end_of_load[1]} ready; during the run: {backlog.summary()}",
        _cpu_note(name, total_cpu, processed),
        f"{name}: " + msg.pg_note(pg_before, pg_after, processed),
        f"{name}: worker at {100 * total_cpu.worker / total_cpu.seconds:.0f}% "
        f"of a core and the cores {total_cpu.cores_busy_pct}% busy from the first POST until "
        "completion was observed",
    ]
    if wrk:
        expected = run.ok * poster_class.per_request
        notes.append(
            f"{name}: wrk read {run.ok:,} answers 202 ({expected:,} messages); the database "
            f"holds {len(ids):,} messages of the phase (more: requests under way when wrk "
            "stopped)"
        )
    return Result(
        name,
        "wrk" if wrk else "aiohttp",
        n,
        [accepted, completed],
        notes,
        None,
        total_cpu.cores_busy_pct,
    )


# -- messaging-latency -------------------------------------------------------------------------
class Listener:
    """The target user's WebSocket: every notification publication's `data.data.t` (the
    sender's perf_counter_ns() right before its POST) -> perf_counter_ns() when its bytes
    were read."""

    def __init__(self) -> None:
        self.received: dict[int, int] = {}
        self.repeated = 0  # the same notification delivered twice
        self.other: Counter[str] = Counter()

    def on_message(self, ws: WebSocket, opcode: int, payload: bytes) -> None:
        message = orjson.loads(payload)
        kind = message.get("type")
        if kind != "publication":
            self.other[str(kind)] += 1
            return
        data = message.get("data") or {}
        inner = data.get("data") if isinstance(data, dict) else None
        if data.get("kind") != "notification" or not isinstance(inner, dict) or "t" not in inner:
            self.other["publication of something else"] += 1
            return
        t = int(inner["t"])
        if t in self.received:
            self.repeated += 1
            return
        self.received[t] = ws.recv_ns


@dataclass
class OpenLoop:
    """One open-loop phase: POSTs sent at a fixed rate, each on its own task."""

    sent: int = 0
    accepted: dict[int, str] = field(default_factory=dict)  # t -> message_id
    wall_ns: dict[int, int] = field(default_factory=dict)  # t -> time.time_ns() at sending
    http_ns: list[int] = field(default_factory=list)  # POST sent -> 202 read
    errors: Counter[str] = field(default_factory=Counter)
    max_lag_s: float = 0.0  # how late the generator sent a POST compared to the schedule
    elapsed: float = 0.0


async def _open_loop(
    client: aiohttp.ClientSession,
    headers: dict[str, str],
    user_id: int,
    rate: float,
    duration: float,
) -> OpenLoop:
    phase = OpenLoop()
    headers = {**msg.JSON, **headers}
    loop = asyncio.get_running_loop()

    async def send() -> None:
        t = _perf_ns()
        phase.wall_ns[t] = time.time_ns()
        try:
            async with client.post(
                msg.PATH, data=msg.body(user_id, {"t": t}), headers=headers
            ) as answer:
                data = await answer.read()
                if answer.status != 202:
                    phase.errors[f"HTTP {answer.status}"] += 1
                    return
                phase.http_ns.append(_perf_ns() - t)
                phase.accepted[t] = orjson.loads(data)["message_id"]
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            phase.errors[type(error).__name__] += 1

    tasks: set[asyncio.Task[None]] = set()
    interval = 1.0 / rate
    count = round(rate * duration)
    start = loop.time()
    for i in range(count):
        delay = start + i * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            phase.max_lag_s = max(phase.max_lag_s, -delay)
        task = asyncio.create_task(send())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        phase.sent += 1
    if tasks:
        await asyncio.gather(*tasks)
    phase.elapsed = loop.time() - start
    return phase


async def _drain(listener: Listener, phase: OpenLoop, harness: Harness, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(t not in listener.received for t in phase.accepted):
        if time.monotonic() > deadline:
            return False
        harness.check_alive()
        await asyncio.sleep(0.05)
    return True


def _segments(harness: Harness, phase: OpenLoop, listener: Listener) -> dict[str, Percentiles]:
    """Where the time goes, per message, from wall clocks (one machine, one clock): POST
    sent -> messages.created_at (HTTP, auth, the accept statement's start), created_at ->
    processed_at (the relay, RabbitMQ, the worker until its statement started), processed_at
    -> read on the WebSocket (the statement, the Redis publish, the hub, the socket)."""
    ids = {message_id: t for t, message_id in phase.accepted.items()}
    with harness.db() as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT id::text, extract(epoch FROM created_at), extract(epoch FROM processed_at)"
            " FROM messages WHERE id = ANY(%s::uuid[]) AND processed_at IS NOT NULL",
            (list(ids),),
        )
        rows = cursor.fetchall()
    offset = time.time_ns() - _perf_ns()  # perf_counter_ns() -> wall-clock ns
    sent_created, created_processed, processed_read = [], [], []
    for message_id, created, processed in rows:
        t = ids[message_id]
        sent_wall = phase.wall_ns[t] / 1e9
        sent_created.append((float(created) - sent_wall) * 1000)
        created_processed.append((float(processed) - float(created)) * 1000)
        read = listener.received.get(t)
        if read is not None:
            processed_read.append(((read + offset) / 1e9 - float(processed)) * 1000)
    found = {
        "POST sent -> created_at": Percentiles.of_ms(sent_created),
        "created_at -> processed_at": Percentiles.of_ms(created_processed),
        "processed_at -> read on the WebSocket": Percentiles.of_ms(processed_read),
    }
    return {name: value for name, value in found.items() if value is not None}


@scenario(
    "messaging-latency",
    "POST /messaging/user-notification at 200/s (open loop) -> notification on a WebSocket",
)
async def messaging_latency(harness: Harness, options: Options) -> Result:
    n = options.connections
    notes: list[str] = []
    listener = Listener()
    async with loadgen.session(harness.base_url, n) as client:
        admin, user_id, user_headers = await _accounts(harness, client)
        owners = [await _admin_id(client, admin), user_id]
        ws: WebSocket | None = None
        try:
            ws, _ = await rt.open_ws(harness, user_headers)
            await rt.subscribe(ws, f"user:{user_id}")
            ws.on_message = listener.on_message
            if options.warmup > 0:
                warm = await _open_loop(client, admin, user_id, LATENCY_RATE, options.warmup)
                if not warm.accepted or not await _drain(
                    listener, warm, harness, COMPLETION_TIMEOUT
                ):
                    missing = sum(1 for t in warm.accepted if t not in listener.received)
                    raise ScenarioError(
                        f"warm-up: {missing}/{len(warm.accepted)} notifications not received "
                        f"(errors {dict(warm.errors)}, other frames {dict(listener.other)})"
                    )
            pg_before = await asyncio.to_thread(msg.pg_counters, harness)
            before = harness.snapshot()
            phase = await _open_loop(client, admin, user_id, LATENCY_RATE, options.duration)
            loaded = harness.snapshot()
            drained = await _drain(listener, phase, harness, DRAIN_TIMEOUT)
            done = harness.snapshot()
            closed = ws.lost.done()
            await asyncio.sleep(1.1)  # the backends flush their statistics once a second
            pg_after = await asyncio.to_thread(msg.pg_counters, harness)
            segments = await asyncio.to_thread(_segments, harness, phase, listener)
        finally:
            if ws is not None:
                await rt.close_all([ws])
            await _cleanup(harness, owners, notes)
    http_cpu, total_cpu = before.until(loaded), before.until(done)
    latencies = [listener.received[t] - t for t in phase.accepted if t in listener.received]
    lost = len(phase.accepted) - len(latencies)
    latency = rt.percentiles_ns(latencies)
    p95 = latency.p95 if latency else float("inf")
    errors = lost + listener.repeated + int(closed)
    accepted = Measurement(
        what=f"POST accepted (202), {LATENCY_RATE:.0f}/s open loop",
        unit="msgs/s",
        operations=len(phase.accepted),
        seconds=phase.elapsed,
        latency_ms=rt.percentiles_ns(phase.http_ns),
        errors=sum(phase.errors.values()),
        **http_cpu.columns(worker=True),
        details={
            "sent": phase.sent,
            "errors_by_kind": dict(phase.errors),
            "max_send_lag_ms": 1000 * phase.max_lag_s,
            **_cpu_details(http_cpu),
        },
    )
    delivered = Measurement(
        what="POST sent -> notification read on WS",
        unit="msgs/s",
        operations=len(latencies),
        seconds=phase.elapsed,
        latency_ms=latency,
        errors=errors,
        **total_cpu.columns(worker=True),
        cpu_window_s=total_cpu.seconds,
        target=Target(f"p95 < {LATENCY_P95_MS:g} ms, 0 lost", p95 < LATENCY_P95_MS and not errors),
        details={
            "accepted": len(phase.accepted),
            "received": len(latencies),
            "lost": lost,
            "repeated": listener.repeated,
            "other_frames": dict(listener.other),
            "drained": drained,
            "websocket_closed_by_server": closed,
            "segments_ms": {name: vars(value) for name, value in segments.items()},
            **_cpu_details(total_cpu),
        },
    )
    notes += [
        f"messaging-latency: {len(latencies):,}/{len(phase.accepted):,} notifications read on "
        f"the WebSocket ({lost} lost, {listener.repeated} twice) of {phase.sent:,} POSTs sent "
        f"at {LATENCY_RATE:.0f}/s; the generator sent at most {1000 * phase.max_lag_s:.1f} ms "
        "behind its schedule",
        "messaging-latency: p50/p95/p99 ms per segment (wall clocks, PostgreSQL's now() is "
        "the statement's start): "
        + "; ".join(f"{name} {p.p50:.1f}/{p.p95:.1f}/{p.p99:.1f}" for name, p in segments.items()),
        _cpu_note("messaging-latency", total_cpu, len(latencies)),
        "messaging-latency: " + msg.pg_note(pg_before, pg_after, len(latencies)),
    ]
    return Result(
        "messaging-latency",
        "aiohttp+wsclient",
        n,
        [accepted, delivered],
        notes,
        None,
        total_cpu.cores_busy_pct,
    )
