"""What both crowd scenarios (c100k: WebSockets, c20k-sse: event streams) check first and
print: the open files they need, and the rows of the phases they share (storm, memory per
connection, one publication to all, one a second to all) with their targets."""

from __future__ import annotations

from bench import crowd_phases as phases
from bench import system
from bench.harness import Harness
from bench.report import Measurement, Target
from bench.scenarios import ScenarioError

FD_RESERVE = 512  # descriptors besides the connections: Redis, PostgreSQL, logs, listeners
STORM_TARGET_S = 60.0
RSS_TARGET = 8 * 1024  # bytes per connection
FIRST_P99_TARGET_MS = 1000.0


def _open_files_limit(pid: int) -> int:
    with open(f"/proc/{pid}/limits", encoding="ascii") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise OSError(f"no open-files limit for process {pid}")


def check_descriptors(harness: Harness, sizes: tuple[int, ...]) -> str:
    """Stop with a clear message when the server or the generator cannot open them all."""
    assert harness.server is not None
    need = max(sizes) + FD_RESERVE
    own = system.raise_open_files_limit(need)
    server = _open_files_limit(harness.server.pid)
    if min(own, server) < need:
        raise ScenarioError(
            f"{max(sizes):,} connections need {need:,} open files in the server and in the "
            f"generator; RLIMIT_NOFILE here is {server:,} (server) and {own:,} (generator, "
            "its hard limit); raise the hard limit (docs/OPERATIONS.md, 'Many connections') "
            "or run smaller --sizes"
        )
    return f"open files: server {server:,}, generator {own:,} (needed {need:,})"


def storm_row(at: str, what: str, storm: phases.Storm) -> Measurement:
    failed = sum(storm.failures.values())
    return Measurement(
        f"{at}: storm ({what})", "conns/s", storm.opened, storm.seconds, None, failed,
        **storm.cpu.columns(), figure=f"{storm.seconds:.1f} s",
        target=Target(f"< {STORM_TARGET_S:g} s, 0 failed",
                      storm.seconds < STORM_TARGET_S and not failed),
        details={"failures": dict(storm.failures)},
    )  # fmt: skip


def memory_row(at: str, storm: phases.Storm, rss_before: int, rss_at: int) -> Measurement:
    per_conn = memory_per_connection(storm, rss_before, rss_at)
    return Measurement(
        f"{at}: server RSS per connection", "B", storm.opened, storm.seconds, None, 0,
        **storm.cpu.columns(), figure=f"{per_conn / 1024:.2f} KB/conn",
        target=Target(f"<= {RSS_TARGET // 1024} KB", per_conn <= RSS_TARGET),
        details={"rss_before_mb": rss_before / 2**20, "rss_at_n_mb": rss_at / 2**20},
    )  # fmt: skip


def memory_per_connection(storm: phases.Storm, rss_before: int, rss_at: int) -> float:
    return (rss_at - rss_before) / max(1, storm.opened)


def first_row(
    at: str, expected: int, tracker: phases.Tracker, cast: phases.Broadcast
) -> Measurement:
    first = phases.percentiles(tracker.first_ns)
    got = len(tracker.first_ns)
    return Measurement(
        f"{at}: one publication -> all", "deliveries", got, cast.seconds, first, expected - got,
        0.0, 0.0, figure=f"{got:,} got it",
        target=Target(f"p99 < {FIRST_P99_TARGET_MS:g} ms",
                      first is not None and first.p99 < FIRST_P99_TARGET_MS),
    )  # fmt: skip


def broadcast_row(
    at: str, tracker: phases.Tracker, cast: phases.Broadcast, missed: int, repeated: int
) -> Measurement:
    lost = cast.expected - cast.delivered
    return Measurement(
        f"{at}: 1 pub/s x {cast.published} -> all", "deliveries/s", cast.delivered,
        cast.seconds, phases.percentiles(tracker.shared_ns), lost + missed + repeated,
        **cast.cpu.columns(),
        target=Target("0 lost, 0 missed", lost == 0 and missed == 0 and repeated == 0),
        details={"missed": missed, "duplicates": repeated, "lost": lost},
    )  # fmt: skip
