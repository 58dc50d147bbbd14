"""The isolated environment a benchmark runs in: its own database (POSTGRES_DB), Redis key
prefix and AMQP names, a server and a worker started as children with LOG_LEVEL=WARNING and
the default (tracing on) configuration, the server pinned to one core and this process (the
load generator) to another, and CPU snapshots of all three. The children are always stopped:
SIGTERM, then SIGKILL after a timeout; PR_SET_PDEATHSIG covers a killed benchmark."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import psycopg2

from bench import system
from bench.system import CpuSnapshot
from server.kernel.settings import ConfigError, Settings, load_settings
from storage.db import dsn

PROJECT_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
BACKGROUND_WARN_PCT = 10.0
PR_SET_PDEATHSIG = 1
SERVER_ENV_DEFAULTS = {
    # The realtime scenarios' publishers send hundreds of publications per second on one
    # connection; the default per-connection limit (PUBLISH_RATE 50/s, PUBLISH_BURST 100)
    # would refuse them. Subscribers, fan-out and everything else keep their defaults.
    "PUBLISH_RATE": "1000000",
    "PUBLISH_BURST": "1000000",
    # The WebRTC scenarios' peers run on this machine: the server peer gathers loopback only
    # (default: the machine's addresses plus 127.0.0.1), and webrtc-idle holds 200 peers
    # while earlier ones may still be closing (default limit 200 per process).
    "ICE_HOST_ADDRESSES": "127.0.0.1",
    "WEBRTC_MAX_PEERS": "1000",
    # Every scenario registers a throw-away account from 127.0.0.1 (default limit: 20 an
    # hour per address).
    "REGISTER_MAX_PER_ADDRESS": "1000000",
    # c100k's shared channel: every user may subscribe and publish, presence is kept, and
    # joins are not announced (N joins told to N members would be N^2 messages).
    "CHANNEL_NAMESPACES": '{"crowd": {"subscribe": "user", "publish": "user", '
    '"presence": true, "join_leave": false}}',
}
_libc = ctypes.CDLL(None, use_errno=True)


class HarnessError(RuntimeError):
    """The environment could not be prepared or a child died."""


def _child_setup(cpus: set[int] | None) -> Callable[[], None]:
    """Runs in the child between fork and exec: die with the parent, take the affinity."""

    def setup() -> None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if cpus:
            os.sched_setaffinity(0, cpus)

    return setup


class Harness:
    def __init__(
        self,
        *,
        database: str,
        prefix: str,
        log_dir: Path,
        server_processes: int = 1,
        redis_url: str | None = None,
    ) -> None:
        self.database = database
        self.server_processes = server_processes
        self.prefix = prefix
        self.log_dir = log_dir
        self.port = system.free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server_overrides = {
            name: os.environ.get(name, value) for name, value in SERVER_ENV_DEFAULTS.items()
        }
        self.upload_dir: str | None = None  # made by start(), removed by stop()
        self.env = dict(
            os.environ,
            **self.server_overrides,
            POSTGRES_DB=database,
            REDIS_PREFIX=prefix,
            AMQP_PREFIX=prefix,
            LOG_LEVEL="WARNING",
            DEBUG="false",
            PYTHONUNBUFFERED="1",
        )
        backends: dict[str, str] = {}
        if redis_url is not None:
            self.env["REDIS_URL"] = backends["REDIS_URL"] = redis_url
        try:
            self.settings: Settings = load_settings(
                POSTGRES_DB=database, REDIS_PREFIX=prefix, AMQP_PREFIX=prefix, **backends
            )
        except ConfigError as error:
            raise HarnessError(str(error)) from None
        self.dsn = dsn(self.settings)
        cpus = system.allowed_cpus()
        self.all_cpus = set(cpus)
        # One server process: it on one core, the generator on another. More processes than
        # the cores left for them: nothing pinned (the kernel shares the cores).
        pinned = len(cpus) >= server_processes + 1
        self.server_cpus: set[int] | None = {cpus[0]} if pinned else None
        self.client_cpus: set[int] | None = {cpus[-1]} if pinned else None
        self.notes: list[str] = []
        self.idle_busy_pct = 0.0
        self.servers: list[subprocess.Popen[bytes]] = []
        self.worker: subprocess.Popen[bytes] | None = None
        self._logs: list[IO[bytes]] = []

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> Harness:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.idle_busy_pct = self.measure_background()
        if self.idle_busy_pct > BACKGROUND_WARN_PCT:
            self.notes.append(
                f"machine not idle before the run: {self.idle_busy_pct:.0f}% of a core was busy "
                "with other processes; figures are noisy"
            )
        s = self.settings
        self.notes.append(
            f"configuration: TRACING_ENABLED={s.TRACING_ENABLED} (OTLP exporter "
            f"{'set' if s.OTEL_EXPORTER_OTLP_ENDPOINT else 'unset'}), "
            f"METRICS_ENABLED={s.METRICS_ENABLED}, DB pool {s.db_max_connections}, "
            f"WORKER_PREFETCH={s.WORKER_PREFETCH}, LOG_LEVEL=WARNING, database {self.database}"
        )
        self.notes.append(
            "server environment: "
            + ", ".join(f"{name}={value}" for name, value in self.server_overrides.items())
            + " (defaults: 50/s, 100, the machine's addresses + 127.0.0.1, 200); UPLOAD_DIR is "
            "a temporary directory removed afterwards"
        )
        self.migrate()
        self.reset_tables()
        if self.server_cpus and self.client_cpus:
            self.notes.append(
                f"server pinned to CPU {min(self.server_cpus)}, load generator to CPU "
                f"{min(self.client_cpus)}; worker, PostgreSQL, Redis, RabbitMQ unpinned"
            )
        else:
            self.notes.append(
                f"{self.server_processes} server process(es) on {len(self.all_cpus)} CPU(s): "
                "nothing pinned, the server, the generator and the services share the cores"
            )
        if self.server_processes > 1:
            self.notes.append(
                f"{self.server_processes} server processes on one port (SO_REUSEPORT: the "
                "kernel spreads the connections); server CPU is their sum"
            )
        if "REDIS_URL" in self.env and self.env["REDIS_URL"].startswith("redis+cluster://"):
            self.notes.append(f"Redis Cluster: {self.env['REDIS_URL']}")
        # uploaded benchmark files (256 MB each) go to a directory of their own
        self.upload_dir = tempfile.mkdtemp(prefix="bench-uploads-")
        self.env["UPLOAD_DIR"] = self.upload_dir
        self._spawn_servers()
        self.worker = self._spawn("worker", None, self.all_cpus)
        if self.client_cpus:
            system.pin_all_threads(os.getpid(), self.client_cpus)
        self.wait_ready()
        if self.server_cpus:  # set before exec and inherited by every thread; re-check
            system.pin_all_threads(self.servers[0].pid, self.server_cpus)

    def _spawn_servers(self, mode: str = "wb") -> None:
        serve = ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.server_processes > 1:
            serve.append("--reuse-port")
        self.servers = [
            self._spawn(f"server-{n}" if n else "server", serve, self.server_cpus, mode)
            for n in range(self.server_processes)
        ]

    def restart_servers(self) -> None:
        """Fresh server processes (same port, same settings; their logs go on): figures
        of one size are not shaped by what an earlier size left in the process (memory
        freed but kept, grown caches)."""
        _stop(self.servers)
        self._spawn_servers(mode="ab")
        self.wait_ready()
        if self.server_cpus:
            system.pin_all_threads(self.servers[0].pid, self.server_cpus)

    @property
    def server(self) -> subprocess.Popen[bytes] | None:
        """The first server process (the only one unless --server-processes)."""
        return self.servers[0] if self.servers else None

    @staticmethod
    def measure_background(seconds: float = 1.0) -> float:
        """Percent of one core busy on the whole machine while nothing of ours runs."""
        before = sum(system.cores_busy_seconds())
        time.sleep(seconds)
        return 100 * (sum(system.cores_busy_seconds()) - before) / seconds

    def migrate(self) -> None:
        """Create the database if missing and migrate it, exactly as an operator would."""
        done = subprocess.run(
            [sys.executable, "-m", "server", "db", "migrate"],
            env=self.env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if done.returncode != 0:
            raise HarnessError(f"`python -m server db migrate` failed:\n{done.stderr[-2000:]}")

    def reset_tables(self) -> None:
        """Empty the benchmark database's tasks and outbox so that every run starts alike."""
        try:
            with self.db() as conn, conn.cursor() as cursor:
                cursor.execute("TRUNCATE tasks, outbox")
        except psycopg2.Error as error:
            raise HarnessError(f"cannot empty the benchmark tables: {error}") from None

    def _spawn(
        self, name: str, serve_args: list[str] | None, cpus: set[int] | None, mode: str = "wb"
    ) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", mode)  # noqa: SIM115 (closed in stop())
        self._logs.append(log)
        module = ["-m", "server", *serve_args] if serve_args else ["-m", "workers"]
        return subprocess.Popen(
            [sys.executable, *module],
            env=self.env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only us; we stop the children
            preexec_fn=_child_setup(cpus),
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                url = f"{self.base_url}/health/ready"  # http://127.0.0.1, built here
                with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310
                    # one process answered; with several, each must have its socket too
                    if answer.status == 200 and all(
                        system.listens_on(child.pid, self.port) for child in self.servers
                    ):
                        return
            except urllib.error.HTTPError as error:
                last = f"HTTP {error.code}: {error.read()[:300]!r}"
            except OSError as error:
                last = str(error)
            time.sleep(0.2)
        raise HarnessError(f"/health/ready did not answer 200 in {READY_TIMEOUT:.0f}s ({last})")

    def check_alive(self) -> None:
        named = [(f"server-{n}" if n else "server", s) for n, s in enumerate(self.servers)]
        for name, child in [*named, ("worker", self.worker)]:
            if child is not None and child.poll() is not None:
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-1500:]
                raise HarnessError(f"{name} exited with code {child.returncode}:\n{tail}")

    def stop(self) -> None:
        _stop([*self.servers, self.worker])
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self.upload_dir is not None:
            shutil.rmtree(self.upload_dir, ignore_errors=True)

    # -- measuring -----------------------------------------------------------------------
    def snapshot(self) -> CpuSnapshot:
        assert self.servers
        assert self.worker is not None
        return CpuSnapshot(
            wall=time.monotonic(),
            server=sum(system.process_cpu_seconds(s.pid) for s in self.servers),
            worker=system.process_cpu_seconds(self.worker.pid),
            client=system.own_cpu_seconds(),
            cores=system.cores_busy_seconds(),
            services=system.services_cpu_seconds(),
        )

    @contextlib.contextmanager
    def db(self) -> Iterator[Any]:
        """An autocommit psycopg2 connection to the benchmark database."""
        conn = psycopg2.connect(self.dsn)
        conn.autocommit = True
        try:
            yield conn
        finally:
            conn.close()


def _stop(processes: Sequence[subprocess.Popen[bytes] | None]) -> None:
    """SIGTERM, then SIGKILL for whoever has not exited within STOP_TIMEOUT."""
    children = [c for c in processes if c is not None and c.poll() is None]
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
