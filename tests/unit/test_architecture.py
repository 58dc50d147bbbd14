"""The house of setup.cfg holds every module: each product module sits on exactly one floor of
the layers contract, and package `__init__` modules import nothing of ours (so the
acyclic-siblings contract sees every cycle). lint-imports checks the arrows themselves."""

from __future__ import annotations

import ast
import configparser
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("server", "handlers", "signaling", "storage", "workers")
OURS = (*PRODUCT, "realtime_client")
# Where each package's directory sits under its source root (the SDK is a distribution of
# its own, in clients/python).
SOURCE_ROOT = {"realtime_client": ROOT / "clients" / "python"}
MAX_LINES = 300


def _modules(package: str) -> dict[str, Path]:
    found = {}
    source_root = SOURCE_ROOT.get(package, ROOT)
    for path in sorted((source_root / package).rglob("*.py")):
        parts = path.relative_to(source_root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _floors() -> list[list[str]]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    raw = config["importlinter:contract:layers"]["layers"]
    floors = []
    for line in raw.strip().splitlines():
        separator = "|" if "|" in line else ":"
        floors.append([name.strip() for name in line.split(separator)])
    return floors


def _floor_of(module: str, floors: list[list[str]]) -> list[int]:
    return [
        index
        for index, floor in enumerate(floors)
        for name in floor
        if module == name or module.startswith(name + ".")
    ]


def test_every_product_module_is_on_exactly_one_floor() -> None:
    floors = _floors()
    homeless, doubled = [], []
    for package in PRODUCT:
        for module, path in _modules(package).items():
            if path.name == "__init__.py" and module in PRODUCT:
                continue  # the root packages themselves hold only a docstring
            where = _floor_of(module, floors)
            if not where:
                homeless.append(module)
            elif len(where) > 1:
                doubled.append(module)
    assert homeless == [], "modules on no floor of setup.cfg's layers contract"
    assert doubled == [], "modules on two floors"


def _imports_of_ours(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [name for name in names if name.split(".")[0] in OURS]


def test_package_inits_import_only_their_own_modules_or_lower_floors() -> None:
    """A package's __init__ that imported a module which imports the package back would be
    a cycle the acyclic-siblings contract cannot see (it skips the ancestors themselves)."""
    floors = _floors()
    offenders = []
    for package in OURS:
        for module, path in _modules(package).items():
            if path.name != "__init__.py":
                continue
            here = _floor_of(module, floors)
            for name in _imports_of_ours(path):
                below = here and _floor_of(name, floors) and _floor_of(name, floors)[0] > here[0]
                if not name.startswith(module + ".") and not below:
                    offenders.append(f"{module} -> {name}")
    assert offenders == []


def test_modules_are_small() -> None:
    sizes = {
        module: len(path.read_text().splitlines())
        for package in PRODUCT
        for module, path in _modules(package).items()
    }
    too_big = {module: lines for module, lines in sizes.items() if lines > MAX_LINES}
    assert too_big == {}
    assert statistics.median(sizes.values()) < 100
