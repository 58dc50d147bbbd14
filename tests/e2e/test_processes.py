"""`python -m server run --processes 2`: two server processes on one port (SO_REUSEPORT),
each a full node. Clients land on both, a publication reaches subscribers on both, and a
server process killed with SIGKILL is restarted while its clients reconnect and recover
every publication from the history."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.accounts import Account
from tests.support.processes import dies_with_parent
from tests.support.proxy import free_port
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 16
CHANNEL = "public:processes"


@pytest.fixture
async def cluster(settings: Any) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    port = free_port()
    env = {
        **os.environ,
        "POSTGRES_DB": settings.POSTGRES_DB,
        "REDIS_PREFIX": settings.REDIS_PREFIX,
        "AMQP_PREFIX": settings.AMQP_PREFIX,
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "PORT": str(port),
    }
    runner = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "run",
        "--processes",
        "2",
        "--workers",
        "1",
        cwd=ROOT,
        env=env,
        preexec_fn=dies_with_parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:

            async def ready() -> bool:
                try:
                    async with session.get(f"{base}/health/ready") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(ready, timeout=40, interval=0.3)
        yield base, runner
    finally:
        if runner.returncode is None:
            runner.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(runner.wait(), 20)
        except TimeoutError:
            runner.kill()
            await runner.wait()


def server_pids(runner_pid: int) -> set[int]:
    children = Path(f"/proc/{runner_pid}/task/{runner_pid}/children").read_text().split()
    return {
        int(pid)
        for pid in children
        if b"serve" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    }


async def nodes_of(session: aiohttp.ClientSession, base: str, admin: Account) -> list[Any]:
    async with session.get(f"{base}/realtime/stats", headers=admin.headers) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    return list(body["nodes"])


class Subscriber:
    """A WebSocket subscriber that reconnects and recovers from its last cursor."""

    def __init__(self, session: aiohttp.ClientSession, base: str, account: Account) -> None:
        self.session, self.base, self.account = session, base, account
        self.cursor: str | None = None
        self.data: list[int] = []
        self.reconnects = 0
        self.nodes: list[str] = []
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError, TimeoutError):
                await self._session()
            self.reconnects += 1
            self.subscribed.clear()
            await asyncio.sleep(0.2)

    async def _session(self) -> None:
        url = f"{self.base}/realtime/ws"
        async with self.session.ws_connect(url, headers=self.account.headers) as ws:
            self.nodes.append((await ws.receive_json(timeout=5))["node"])
            await ws.send_json({"type": "subscribe", "channel": CHANNEL, "since": self.cursor})
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                frame = message.json()
                if frame["type"] == "subscribed":
                    assert frame["recovered"] or self.cursor is None, frame
                    for publication in frame.get("publications", []):
                        self.data.append(publication["data"])
                    self.cursor = frame["cursor"]
                    self.subscribed.set()
                elif frame["type"] == "publication":
                    self.data.append(frame["data"])
                    self.cursor = frame["cursor"]


async def test_two_processes_share_a_port_and_survive_a_killed_one(
    cluster: tuple[str, asyncio.subprocess.Process], alice: Account, admin: Account
) -> None:
    base, runner = cluster
    async with aiohttp.ClientSession() as session:
        subscribers = [Subscriber(session, base, alice) for _ in range(CLIENTS)]
        tasks = [asyncio.create_task(s.run()) for s in subscribers]
        try:
            await asyncio.wait_for(asyncio.gather(*(s.subscribed.wait() for s in subscribers)), 15)

            # The kernel spread the clients over both processes (the `connected` frame names
            # the node)...
            assert len({s.nodes[0] for s in subscribers}) == 2, "clients on both processes"

            async def stats_list_both() -> bool:
                # ...and the stats name every node of this Redis prefix (the tests' own app
                # too); ours are the two whose ids carry our server processes' pids.
                pids = server_pids(runner.pid)
                nodes = await nodes_of(session, base, admin)
                ours = [n for n in nodes if int(n["node"].split("-")[-2]) in pids]
                return len(ours) == 2

            await eventually(stats_list_both, timeout=20, interval=0.5)

            accepted: list[int] = []

            async def publish(n: int) -> None:
                # A request on a kept-alive connection to the killed process fails: it
                # was not accepted, and nobody may count on it.
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.post(
                        f"{base}/realtime/broadcast",
                        json={"channel": CHANNEL, "data": n},
                        headers=admin.headers,
                    ) as response:
                        assert response.status == 202, await response.text()
                        accepted.append(n)

            for n in range(10):
                await publish(n)
            victim = min(server_pids(runner.pid))
            os.kill(victim, signal.SIGKILL)
            for n in range(10, 40):  # while the killed node's clients reconnect
                await publish(n)
                await asyncio.sleep(0.05)
            assert len(accepted) >= 30, accepted

            async def restarted() -> bool:
                pids = server_pids(runner.pid)
                return len(pids) == 2 and victim not in pids

            await eventually(restarted, timeout=15, interval=0.3)
            assert any(s.reconnects for s in subscribers), "SIGKILL dropped nobody"

            async def everyone_has_everything() -> bool:
                return all(set(accepted) <= set(s.data) for s in subscribers)

            await eventually(everyone_has_everything, timeout=15, interval=0.3)
            for subscriber in subscribers:
                assert subscriber.data == sorted(set(subscriber.data)), "in order, exactly once"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
