"""Process and CPU facts read from /proc and getrusage: CPU seconds of a process and of the
PostgreSQL/RabbitMQ/Redis processes, affinity, busy time per core, the machine, and the
CpuSnapshot/CpuDelta pair that scenarios take around a measured phase."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import socket
from dataclasses import dataclass
from typing import TypedDict

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of `pid` (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        text = stat.read()
    fields = text[text.rindex(")") + 2 :].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


SERVICES = {"postgres": "postgresql", "beam.smp": "rabbitmq", "redis-server": "redis"}


def process_rss_bytes(pid: int) -> int:
    """Resident set size of `pid` (VmRSS of /proc/<pid>/status), in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no VmRSS for process {pid}")


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (at most the hard limit);
    return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def services_cpu_seconds() -> dict[int, tuple[str, float]]:
    """pid -> (service, CPU seconds) of every PostgreSQL, RabbitMQ and Redis process (all of
    them: another client of the same services is counted too)."""
    found: dict[int, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="utf-8") as comm:
                name = SERVICES.get(comm.read().strip())
            if name is not None:
                found[int(entry)] = (name, process_cpu_seconds(int(entry)))
        except (OSError, ValueError):  # the process ended meanwhile
            continue
    return found


def own_cpu_seconds() -> float:
    """CPU used by this process and its waited-for children (wrk runs as one)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def cores_busy_seconds() -> list[float]:
    """Busy (not idle, not iowait) seconds per core since boot, from /proc/stat."""
    busy: list[float] = []
    with open("/proc/stat", encoding="ascii") as stat:
        for line in stat:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks = [int(value) for value in values[:8]]
                busy.append((sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS)
    return busy


def allowed_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def pin_all_threads(pid: int, cpus: set[int]) -> None:
    """Set the affinity of every existing thread of `pid`; new threads inherit it."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
            os.sched_setaffinity(int(tid), cpus)


def listens_on(pid: int, port: int) -> bool:
    """Whether the process `pid` holds a listening TCP socket on `port` (one of several
    processes sharing the port with SO_REUSEPORT has its own)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table, encoding="ascii") as lines:
            next(lines)  # the header
            for line in lines:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
    return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@dataclass(frozen=True)
class Machine:
    nproc: int
    cpu_model: str
    python: str
    kernel: str

    @classmethod
    def describe(cls) -> Machine:
        return cls(
            nproc=len(allowed_cpus()),
            cpu_model=cpu_model(),
            python=platform.python_version(),
            kernel=platform.release(),
        )


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    server: float
    worker: float
    client: float
    cores: list[float]
    services: dict[int, tuple[str, float]]

    def until(self, later: CpuSnapshot) -> CpuDelta:
        busy = [b - a for a, b in zip(self.cores, later.cores, strict=True)]
        services: dict[str, float] = {}
        for pid, (name, seconds_then) in later.services.items():
            spent = seconds_then - self.services.get(pid, (name, 0.0))[1]
            services[name] = round(services.get(name, 0.0) + spent, 2)
        seconds = later.wall - self.wall
        return CpuDelta(
            seconds=seconds,
            server=later.server - self.server,
            worker=later.worker - self.worker,
            client=later.client - self.client,
            cores_busy_pct=[round(100 * b / seconds, 1) if seconds > 0 else 0.0 for b in busy],
            other=max(0.0, sum(busy) - (later.server - self.server) - (later.worker - self.worker)
                      - (later.client - self.client)),
            services=services,
        )  # fmt: skip


@dataclass(frozen=True)
class CpuDelta:
    seconds: float
    server: float
    worker: float
    client: float
    cores_busy_pct: list[float]
    other: float  # busy CPU seconds outside server, worker and generator (PostgreSQL, ...)
    services: dict[str, float]  # CPU seconds of PostgreSQL, RabbitMQ, Redis (all clients)

    def columns(self, *, worker: bool = False) -> CpuColumns:
        """This window's CPU fields of a bench.report.Measurement (the worker's only for
        scenarios it takes part in)."""
        found = CpuColumns(
            server_cpu_s=self.server, client_cpu_s=self.client, other_cpu_s=self.other
        )
        if worker:
            found["worker_cpu_s"] = self.worker
        return found


class CpuColumns(TypedDict, total=False):
    server_cpu_s: float
    client_cpu_s: float
    other_cpu_s: float
    worker_cpu_s: float
