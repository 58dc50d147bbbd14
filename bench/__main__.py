"""`python -m bench [--list] [--duration S] [--connections N] [scenario ...]`: run the named
scenarios (default: all) against an isolated server + worker, print one table and write
bench/results/<timestamp>.json. Exit code 1 when a scenario failed or missed its target."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import aiohttp

from bench import system
from bench.harness import PROJECT_ROOT, Harness, HarnessError
from bench.report import CLIENT_SATURATED_PCT, RESULTS_DIR, Result, table, write_json
from bench.scenarios import Options, Scenario, load


def _parser(scenarios: dict[str, Scenario]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenario", nargs="*", help="scenarios to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument(
        "--generator",
        choices=["auto", "aiohttp", "wrk"],
        default="auto",
        help="load generator of the closed-loop HTTP scenarios (auto: wrk when on PATH)",
    )
    parser.add_argument("--database", default="realtime_bench", help="POSTGRES_DB to use")
    parser.add_argument("--prefix", default="bench", help="REDIS_PREFIX and AMQP_PREFIX")
    parser.add_argument(
        "--server-processes",
        type=int,
        default=1,
        help="server processes sharing the port (SO_REUSEPORT); default 1",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=(),
        help="comma-separated sizes of the scaling scenarios (c100k: connections; "
        "webrtc capacity: peers); default: each scenario's own",
    )
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="start a local Redis Cluster (3 masters, 3 replicas; redis-server) for the run",
    )
    return parser


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes are positive whole numbers, e.g. 1000,10000")
    return sizes


def _git_state() -> dict[str, Any]:
    """The commit measured and whether the working tree had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through the harness, which stops the children


async def _run_all(harness: Harness, chosen: Sequence[Scenario], options: Options) -> list[Result]:
    results: list[Result] = []
    for item in chosen:
        print(f"running {item.name} ({options.duration:g}s + {options.warmup:g}s warm-up)...",
              file=sys.stderr, flush=True)  # fmt: skip
        try:
            harness.check_alive()
            result = await item.run(harness, options)
        except (HarnessError, Exception) as error:  # one broken scenario must not hide the rest
            traceback.print_exc(file=sys.stderr)
            result = Result(item.name, "-", options.connections, error=str(error)[:200])
        results.append(result)
    return results


def _run(harness: Harness, chosen: Sequence[Scenario], options: Options) -> list[Result]:
    try:
        import uvloop

        return uvloop.run(_run_all(harness, chosen, options))
    except ImportError:  # pragma: no cover
        return asyncio.run(_run_all(harness, chosen, options))


@contextlib.contextmanager
def _redis_cluster() -> Iterator[str]:
    """The tests' Redis Cluster (tests/support/redis_cluster.py), started for this run: its
    REDIS_URL while it runs, its processes and files gone afterwards."""
    from tests.support.redis_cluster import start_cluster

    print("starting a Redis Cluster (6 redis-server processes)...", file=sys.stderr, flush=True)
    nodes = start_cluster()
    try:
        yield nodes.url
    finally:
        nodes.stop()


def main(argv: list[str] | None = None) -> int:
    scenarios = load()
    args = _parser(scenarios).parse_args(argv)
    if args.list:
        width = max(len(name) for name in scenarios)
        for name, item in scenarios.items():
            print(f"{name.ljust(width)}  {item.summary}")
        return 0
    unknown = [name for name in args.scenario if name not in scenarios]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; see --list", file=sys.stderr)
        return 2
    if args.duration <= 0 or args.connections < 1 or args.warmup < 0:
        print("--duration and --connections must be positive", file=sys.stderr)
        return 2
    if args.server_processes < 1:
        print("--server-processes must be at least 1", file=sys.stderr)
        return 2
    chosen = [scenarios[name] for name in (args.scenario or list(scenarios))]
    options = Options(args.duration, args.connections, args.warmup, args.generator, args.sizes)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    machine = system.Machine.describe()
    started = time.time()
    try:
        with contextlib.ExitStack() as stack:
            redis_url = stack.enter_context(_redis_cluster()) if args.redis_cluster else None
            harness = stack.enter_context(
                Harness(
                    database=args.database,
                    prefix=args.prefix,
                    log_dir=RESULTS_DIR / f"{stamp}-logs",
                    server_processes=args.server_processes,
                    redis_url=redis_url,
                )
            )
            results = _run(harness, chosen, options)
            notes = list(harness.notes)
    except HarnessError as error:
        print(f"benchmark environment failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; server and worker stopped", file=sys.stderr)
        return 130

    print(f"machine: {machine.nproc} CPUs, {machine.cpu_model}, Python {machine.python}")
    for note in notes:
        print(f"note: {note}")
    print(table(results))
    if any(m.client_cpu_pct >= CLIENT_SATURATED_PCT for r in results for m in r.measurements):
        print(f"* generator CPU >= {CLIENT_SATURATED_PCT:.0f}% of its core: the client may be "
              "the bottleneck, so the server figure is a lower bound")  # fmt: skip
    for result in results:
        for note in result.notes:
            print(f"note: {note}")
    path = RESULTS_DIR / f"{stamp}.json"
    meta: dict[str, Any] = {
        "date": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "options": vars(options),
        "machine": vars(machine),
        "git": _git_state(),
        "versions": {"aiohttp": aiohttp.__version__, "python": platform.python_version()},
        "environment": notes,
        "elapsed_s": round(time.time() - started, 1),
    }
    write_json(path, meta, results)
    print(f"results: {path.relative_to(RESULTS_DIR.parent.parent)}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
