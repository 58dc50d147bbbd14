"""Processes the tests start die with the test run: each asks the kernel for SIGTERM when its
parent goes (PR_SET_PDEATHSIG), so a Ctrl-C or a killed pytest leaves no `python -m workers`
or server behind. Pass `preexec_fn=dies_with_parent` to subprocess.Popen or
asyncio.create_subprocess_exec."""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def dies_with_parent() -> None:
    """Runs in the child between fork and exec (Linux)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
