"""The scenario registry. A scenario is a coroutine `(harness, options) -> Result`,
registered with `@scenario(name, summary)` in a module of this package; every module here is
imported by `load()`, so a new family (websocket.py, sse.py, webrtc.py) needs no other edit."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from bench import loadgen
from bench.harness import Harness
from bench.report import Result

Generator = Literal["auto", "aiohttp", "wrk"]


@dataclass(frozen=True)
class Options:
    duration: float
    connections: int
    warmup: float
    generator: Generator
    # The sizes of the scaling scenarios (connections, peers): `--sizes 1000,10000`; empty =
    # each scenario's own default.
    sizes: tuple[int, ...] = ()


ScenarioFn = Callable[[Harness, Options], Awaitable[Result]]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    run: ScenarioFn


SCENARIOS: dict[str, Scenario] = {}


def uses_wrk(options: Options) -> bool:
    """Whether a closed-loop HTTP scenario drives its load with wrk: `--generator wrk` (which
    must then be installed) or `auto` with wrk on PATH."""
    if options.generator == "wrk" and not loadgen.wrk_available():
        raise ScenarioError("--generator wrk, but wrk is not on PATH")
    return options.generator == "wrk" or (options.generator == "auto" and loadgen.wrk_available())


class ScenarioError(RuntimeError):
    """The scenario could not produce a measurement (reported in its table row)."""


def scenario(name: str, summary: str) -> Callable[[ScenarioFn], ScenarioFn]:
    def register(run: ScenarioFn) -> ScenarioFn:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} registered twice")
        SCENARIOS[name] = Scenario(name, summary, run)
        return run

    return register


def load() -> dict[str, Scenario]:
    """Import every scenario module (alphabetically) and return the registry."""
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{module.name}")
    return SCENARIOS
