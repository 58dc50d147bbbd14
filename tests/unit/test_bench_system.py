"""bench/system.py's listens_on (how the harness knows that every server process sharing a
port with SO_REUSEPORT is ready) and the runner's refusal of a bad --server-processes."""

from __future__ import annotations

import os
import socket

import pytest

from bench import system
from bench.__main__ import main


def test_a_process_listening_on_a_port_is_seen_and_only_then() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        assert not system.listens_on(os.getpid(), port)  # bound, not listening yet
        listener.listen()
        assert system.listens_on(os.getpid(), port)
        assert not system.listens_on(os.getpid(), system.free_port())
    assert not system.listens_on(os.getpid(), port)


def test_a_connected_socket_is_not_a_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            with accepted:
                listener.close()
                assert client.getpeername()[1] == port
                assert not system.listens_on(os.getpid(), port)


@pytest.mark.parametrize("count", ["0", "-2"])
def test_server_processes_must_be_positive(count: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--server-processes", count, "health"]) == 2
    assert "--server-processes must be at least 1" in capsys.readouterr().err
