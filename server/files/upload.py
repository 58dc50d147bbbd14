"""The Upload value (one file being received: its declared shape and its progress so far)
and the rules that make a client's file name and media type safe to store and serve."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

MIME = re.compile(r"^[\w.+-]{1,127}/[\w.+-]{1,127}$", re.ASCII)
DEFAULT_MIME = "application/octet-stream"
MAX_NAME = 255


@dataclass(eq=False)
class Upload:
    """One connection's hold on a file being uploaded. `closed` turns true when that hold
    ends (finished, discarded, paused or taken over by another connection)."""

    file_id: uuid.UUID
    owner_id: int
    name: str
    mime: str
    size: int
    channel: str | None
    expected_sha256: str | None
    received: int
    lock: asyncio.Lock  # shared by every Upload object of the file (see ActiveUploads)
    hasher: Any = field(default_factory=hashlib.sha256)
    closed: bool = False


def safe_name(name: str) -> str:
    """A display name without path separators, control or format characters, and not
    starting with a dot; at most 255 characters."""
    cleaned = "".join(ch for ch in name if ch.isprintable() and ch not in "/\\")
    return cleaned.strip(" .")[:MAX_NAME].rstrip(" ") or "file"


def safe_mime(mime: str | None) -> str:
    """`type/subtype` (parameters dropped), or application/octet-stream."""
    value = (mime or "").split(";", 1)[0].strip().lower()
    return value if MIME.match(value) else DEFAULT_MIME
