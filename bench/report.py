"""What a scenario returns (Result, one or more Measurement rows), percentiles, the printed
table and the JSON file under bench/results/."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CLIENT_SATURATED_PCT = 90.0  # generator CPU above this: the client core limited the figure


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p95: float
    p99: float

    @classmethod
    def of_ms(cls, values: Sequence[float]) -> Percentiles | None:
        """Nearest-rank percentiles of `values` (already in milliseconds)."""
        if not values:
            return None
        ordered = sorted(values)

        def rank(q: float) -> float:
            return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

        return cls(rank(0.50), rank(0.95), rank(0.99))


@dataclass(frozen=True)
class Target:
    description: str
    passed: bool

    def __str__(self) -> str:
        return f"{self.description}: {'PASS' if self.passed else 'FAIL'}"


@dataclass
class Measurement:
    """One table row: `operations` of one kind over `seconds`, with the CPU they cost."""

    what: str
    unit: str
    operations: int
    seconds: float
    latency_ms: Percentiles | None
    errors: int
    server_cpu_s: float
    client_cpu_s: float
    worker_cpu_s: float | None = None
    other_cpu_s: float | None = None  # the rest of the machine: PostgreSQL, RabbitMQ, noise
    target: Target | None = None
    details: dict[str, Any] = field(default_factory=dict)
    cpu_window_s: float | None = None  # when the CPU was measured over another span
    figure: str | None = None  # shown instead of the throughput (e.g. "12.3 KB/conn")

    @property
    def _window(self) -> float:
        return self.cpu_window_s if self.cpu_window_s is not None else self.seconds

    @property
    def throughput(self) -> float:
        return self.operations / self.seconds if self.seconds > 0 else 0.0

    @property
    def server_cpu_pct(self) -> float:
        return 100 * self.server_cpu_s / self._window if self._window > 0 else 0.0

    @property
    def client_cpu_pct(self) -> float:
        return 100 * self.client_cpu_s / self._window if self._window > 0 else 0.0

    @property
    def other_cpu_pct(self) -> float | None:
        if self.other_cpu_s is None or self._window <= 0:
            return None
        return 100 * self.other_cpu_s / self._window

    @property
    def cpu_ms_per_1k(self) -> float | None:
        """Server CPU milliseconds per 1,000 operations."""
        if not self.operations:
            return None
        return 1000 * self.server_cpu_s / self.operations * 1000

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(
            throughput=self.throughput,
            server_cpu_pct=self.server_cpu_pct,
            client_cpu_pct=self.client_cpu_pct,
            other_cpu_pct=self.other_cpu_pct,
            server_cpu_ms_per_1k=self.cpu_ms_per_1k,
            target=None if self.target is None else dataclasses.asdict(self.target),
        )
        return data


@dataclass
class Result:
    scenario: str
    generator: str
    connections: int
    measurements: list[Measurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    cores_busy_pct: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and all(
            m.target is None or m.target.passed for m in self.measurements
        )


COLUMNS = (
    "scenario", "measured", "generator", "throughput", "p50 ms", "p95 ms", "p99 ms",
    "errors", "srv CPU s", "srv CPU%", "srv CPU ms/1k", "wkr CPU s", "gen CPU%", "other CPU%",
    "target",
)  # fmt: skip
NUMERIC = {"throughput", "p50 ms", "p95 ms", "p99 ms", "errors", "srv CPU s", "srv CPU%"}
NUMERIC |= {"srv CPU ms/1k", "wkr CPU s", "gen CPU%", "other CPU%"}


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _row(result: Result, m: Measurement) -> list[str]:
    lat = m.latency_ms
    saturated = "*" if m.client_cpu_pct >= CLIENT_SATURATED_PCT else ""
    return [
        result.scenario,
        m.what,
        result.generator,
        m.figure if m.figure is not None else f"{m.throughput:,.0f} {m.unit}",
        _num(None if lat is None else lat.p50, 2),
        _num(None if lat is None else lat.p95, 2),
        _num(None if lat is None else lat.p99, 2),
        str(m.errors),
        _num(m.server_cpu_s, 2),
        _num(m.server_cpu_pct, 0),
        _num(m.cpu_ms_per_1k, 0),
        _num(m.worker_cpu_s, 2),
        _num(m.client_cpu_pct, 0) + saturated,
        _num(m.other_cpu_pct, 0),
        "-" if m.target is None else str(m.target),
    ]


def table(results: Sequence[Result]) -> str:
    rows = [list(COLUMNS)]
    for result in results:
        if result.error is not None:
            rows.append([result.scenario, f"FAILED: {result.error}"] + [""] * (len(COLUMNS) - 2))
        rows.extend(_row(result, m) for m in result.measurements)
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    if any(r.error for r in results):
        widths[1] = max(len(row[1]) for row in rows if not row[1].startswith("FAILED"))

    def line(row: list[str]) -> str:
        cells = []
        for name, cell, width in zip(COLUMNS, row, widths, strict=True):
            cells.append(cell.rjust(width) if name in NUMERIC else cell.ljust(width))
        return "  ".join(cells).rstrip()

    out = [line(rows[0]), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in rows[1:])
    return "\n".join(out)


def write_json(path: Path, meta: dict[str, Any], results: Sequence[Result]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        **meta,
        "results": [
            {
                "scenario": r.scenario,
                "generator": r.generator,
                "connections": r.connections,
                "error": r.error,
                "notes": r.notes,
                "cores_busy_pct": r.cores_busy_pct,
                "measurements": [m.as_dict() for m in r.measurements],
            }
            for r in results
        ],
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
