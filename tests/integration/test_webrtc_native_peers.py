"""The server peer with native WebRTC stacks that are not aiortc: libdatachannel (through
node-datachannel) and werift, the pure TypeScript stack (tests/peers, installed by `make
node-peers`). With each, it echoes byte-exact, its close is noticed within a second (not when
ICE consent expires, ~30 s later), and a refused bridged data channel delivers its error
message before it closes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from server.app import create_app
from server.kernel.settings import Settings
from tests.conftest import make_settings
from tests.support.accounts import Account
from tests.support.processes import dies_with_parent
from tests.support.rtc_media import server_peers
from tests.support.waiting import eventually

PEERS_DIR = Path(__file__).resolve().parents[1] / "peers"
# the stack, its npm package and the script that drives it (same command line and output)
STACKS = {
    "libdatachannel": ("node-datachannel", "datachannel-peer.js"),
    "werift": ("werift", "werift-peer.js"),
}


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> web.Application:
    # The peers are told to gather 127.0.0.1 (`--bind`): the server gathers loopback only.
    return create_app(
        make_settings(
            POSTGRES_DB=settings.POSTGRES_DB,
            ICE_HOST_ADDRESSES="127.0.0.1",
            UPLOAD_DIR=str(tmp_path / "uploads"),
        )
    )


@pytest.fixture(scope="module", params=sorted(STACKS))
def stack(request: pytest.FixtureRequest) -> tuple[str, Path]:
    """The node executable and the script of one native stack."""
    package, script = STACKS[request.param]
    path = shutil.which("node")
    if path is None or not (PEERS_DIR / "node_modules" / package).is_dir():
        pytest.fail("the native test peers are not installed: run `make node-peers`")
    return path, PEERS_DIR / script


class NativePeer:
    """The Node process: its JSON lines as they come, and its stdin to tell it to close."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def run(
        cls, stack: tuple[str, Path], client: Any, account: Account, *args: str
    ) -> AsyncIterator[NativePeer]:
        node, script = stack
        process = await asyncio.create_subprocess_exec(
            node,
            str(script),
            str(client.make_url("/")),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={
                "PATH": "/usr/bin:/bin",
                "PEER_TOKEN": account.access_token,
                "PEER_LOG": os.environ.get("PEER_LOG", ""),  # the stack's own log, if asked
            },
            cwd=PEERS_DIR,
            preexec_fn=dies_with_parent,
        )
        try:
            yield cls(process)
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()

    async def next(self, *events: str, timeout: float = 15) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            try:
                line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
            except TimeoutError:
                raise AssertionError(f"no {events} within {timeout} s: {self.events}") from None
            assert line, f"the peer exited; it said: {self.events}"
            event = dict(orjson.loads(line))
            self.events.append(event)
            assert event["event"] != "error", event
            if event["event"] in events:
                return event

    def last(self, kind: str) -> dict[str, Any]:
        return [event for event in self.events if event["event"] == kind][-1]

    def since_last(self, kind: str) -> list[dict[str, Any]]:
        """The events after the last one of this kind (a retried connection's, e.g.)."""
        indexes = [i for i, event in enumerate(self.events) if event["event"] == kind]
        return self.events[indexes[-1] + 1 :]

    def tell_to_close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"close\n")


async def peers_become(client: Any, admin: Account, count: int, timeout: float) -> float:
    """Poll GET /realtime/webrtc/peers until it lists `count` peers: how long it took."""
    started = time.monotonic()

    async def reached() -> tuple[float] | None:
        peers = await server_peers(client, admin)
        return (time.monotonic() - started,) if len(peers) == count else None

    [took] = await eventually(reached, timeout=timeout, interval=0.02)
    return took


@pytest.mark.parametrize("close_channels", [False, True], ids=["abrupt", "channels_first"])
async def test_native_peer_echoes_and_its_close_is_seen_within_a_second(
    client: Any, alice: Account, admin: Account, stack: tuple[str, Path], close_channels: bool
) -> None:
    """Closing the peer connection at once, and after closing every data channel (the SCTP
    association then ends with no channel left to report it)."""
    args: tuple[str, ...] = ("--bind", "127.0.0.1", "--wait-stdin")
    if close_channels:
        args = (*args, "--close-channels")
    async with NativePeer.run(stack, client, alice, *args) as peer:
        echoed = await peer.next("echo")
        assert echoed == {**echoed, "exact": True, "bytes": 1000}
        # (a failed first attempt's server peer closes at once: only this one stays)
        await peers_become(client, admin, 1, timeout=5)
        [listed] = await server_peers(client, admin)
        assert listed["peer_id"] == peer.last("answered")["peer_id"]
        assert listed["state"] == "connected"
        peer.tell_to_close()
        await peer.next("closed")
        took = await peers_become(client, admin, 0, timeout=1.0)
        retries = sum(event["event"] == "retry" for event in peer.events)
        print(f"{stack[1].name}: close seen after {took:.3f} s ({retries} connection retries)")
        assert await peer.process.wait() == 0


@pytest.mark.parametrize("burst", [0, 300])
async def test_native_peer_gets_the_error_before_a_refused_bridge_closes(
    client: Any, alice: Account, bob: Account, admin: Account, stack: tuple[str, Path], burst: int
) -> None:
    """With the bridged channel opening alone, and while the server echoes a burst (its
    SCTP congestion window full, the error message queued behind the echoes)."""
    label = f"user:{bob.id}"
    args = ("--bind", "127.0.0.1", "--bridge", label, "--burst", str(burst))
    async with NativePeer.run(stack, client, alice, *args) as peer:
        await peer.next("closed")
        bridged = [event for event in peer.since_last("answered") if event.get("label") == label]
        kinds = [event["event"] for event in bridged]
        assert kinds == ["channel_open", "message", "channel_closed"], peer.events
        error = orjson.loads(bridged[1]["data"])
        assert error["type"] == "error"
        assert error["code"] == "forbidden", error
        await peers_become(client, admin, 0, timeout=1.0)
        assert await peer.process.wait() == 0
