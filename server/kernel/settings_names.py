"""Misspelled settings: names in the environment or `.env` that look like one of ours but are
not, e.g. `DB_POOL_MAX` for `DB_POOL_SIZE`. pydantic ignores unknown names (`extra="ignore"`),
so without this a typo silently leaves the default in force.

A name is suspect when it is upper-case, not a setting, and either shares a group prefix with
our settings (`DB_`, `POSTGRES_`, `WS_`, ...) and resembles one of that group, or resembles
any setting very closely. Only names are reported, never values (they may be secrets).
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from dotenv import dotenv_values

log = logging.getLogger(__name__)

GROUP_CUTOFF = 0.6  # same prefix as our settings: a looser resemblance is enough
ANY_CUTOFF = 0.85  # other names: only near-identical spellings (SECRETKEY, LOGLEVEL)
# Read by other programs that share the environment or the .env file: never ours.
FOREIGN_NAMES = frozenset(
    {
        "POSTGRES_HOST_AUTH_METHOD",
        "POSTGRES_INITDB_ARGS",
        "POSTGRES_INITDB_WALDIR",
        "RABBITMQ_DEFAULT_USER",
        "RABBITMQ_DEFAULT_PASS",
        "RABBITMQ_DEFAULT_VHOST",
    }
)
# The OpenTelemetry SDK reads its own OTEL_* variables: only a near-identical spelling counts.
FOREIGN_PREFIXES = ("OTEL_",)
# Names other projects use for one of our settings, where spelling alone would mislead.
COMMON_ALIASES = {
    "POSTGRES_HOST": "POSTGRES_SERVER",
    "POSTGRES_DATABASE": "POSTGRES_DB",
    "TRUST_FORWARDED_FOR": "TRUSTED_PROXIES",  # the yes/no it replaced: now say which proxies
}

# Old names still read (a validation alias of the setting), with a warning to rename them.
DEPRECATED_NAMES = {"WS_ALLOWED_ORIGINS": "CORS_ALLOWED_ORIGINS"}


def _group(name: str) -> str | None:
    head, sep, _ = name.partition("_")
    return head if sep else None


def likely_setting(name: str, known: Iterable[str]) -> str | None:
    """The setting `name` was probably meant to be, or None when it is not a lookalike."""
    known = sorted(known)
    if name != name.upper() or name in known or name in FOREIGN_NAMES or name in DEPRECATED_NAMES:
        return None
    if name in COMMON_ALIASES and COMMON_ALIASES[name] in known:
        return COMMON_ALIASES[name]
    group = _group(name)
    if group and not name.startswith(FOREIGN_PREFIXES):
        peers = [setting for setting in known if _group(setting) == group]
        match = difflib.get_close_matches(name, peers, n=1, cutoff=GROUP_CUTOFF)
        if match:
            return match[0]
    match = difflib.get_close_matches(name, known, n=1, cutoff=ANY_CUTOFF)
    return match[0] if match else None


def misspelled_settings(
    known: Iterable[str],
    environ: Mapping[str, str] | None = None,
    env_file: str | Path | None = ".env",
) -> list[tuple[str, str, str]]:
    """(name, where, intended setting) for each lookalike in the environment and .env."""
    known = {name.upper() for name in known}
    sources: list[tuple[str, Iterable[str]]] = [
        ("environment", os.environ if environ is None else environ)
    ]
    if env_file is not None and Path(env_file).is_file():
        sources.append((str(env_file), dotenv_values(env_file).keys()))
    found = []
    seen = set()
    for where, names in sources:
        for name in sorted(names):
            intended = likely_setting(name, known)
            if intended and name not in seen:
                seen.add(name)
                found.append((name, where, intended))
    return found


def warn_misspelled_settings(known: Iterable[str], env_file: object) -> None:
    """One WARNING per lookalike name (load_settings calls this; env_file as pydantic takes it)."""
    path = env_file if isinstance(env_file, str | Path) else None
    for name, where, intended in misspelled_settings(known, env_file=path):
        log.warning("%s is not a setting (%s); did you mean %s?", name, where, intended)
    given = set(os.environ) | (set(dotenv_values(path)) if path and Path(path).is_file() else set())
    for name in sorted({name.upper() for name in given} & set(DEPRECATED_NAMES)):
        log.warning(
            "%s is deprecated: it is read as %s, which also allows those origins "
            "cross-origin REST access (CORS); rename it",
            name,
            DEPRECATED_NAMES[name],
        )
