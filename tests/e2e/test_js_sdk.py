"""The TypeScript SDK (clients/js) against a real server process: `npm test` runs node's test
runner over clients/js/test, with the server's URL and two users' credentials in its
environment, and a control URL through which a test stops the server and starts it again
on the same port (reconnect and recovery across a restart)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.accounts import Account
from tests.support.browser import chromium
from tests.support.nodes import ROOT, node_env, ready
from tests.support.processes import dies_with_parent
from tests.support.proxy import free_port
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

JS = ROOT / "clients" / "js"
NODE_RUN_TIMEOUT = 300  # seconds for install + build + every node test


class RestartableServer:
    """`python -m server serve` on a port that stays the same across restarts."""

    def __init__(self, settings: Any, env: dict[str, str], log: Path) -> None:
        self.log = log  # every run's stderr, appended
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._env = node_env(settings, **env)
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0

    async def start(self) -> None:
        with self.log.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.process = await self._spawn(log)
        async with aiohttp.ClientSession() as session:

            async def up() -> bool:
                return await ready(session, self.base)

            await eventually(up, timeout=30, interval=0.1)

    async def _spawn(self, log: Any) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            cwd=ROOT,
            env=self._env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
            preexec_fn=dies_with_parent,
        )

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def restart(self, request: web.Request) -> web.Response:
        await self.stop()
        await self.start()
        self.restarts += 1
        return web.Response(text="restarted")


SUBSCRIPTION_TOKEN_KEY = "js-sdk-test-subscription-token-key-0123456789"


@pytest.fixture
async def server(settings: Any, tmp_path: Path) -> AsyncIterator[RestartableServer]:
    node = RestartableServer(
        settings,
        {
            "UPLOAD_DIR": str(tmp_path / "uploads"),
            "UPLOAD_CHUNK_SIZE": "16384",  # an upload of 1 MiB takes many chunks
            "UPLOAD_WINDOW": "65536",
            # subscription tokens (clients/js/test/private.test.ts): `docs:` opens to tokens only
            "SUBSCRIPTION_TOKEN_KEY": SUBSCRIPTION_TOKEN_KEY,
            "CHANNEL_NAMESPACES": '{"docs": {"subscribe": "nobody", "publish": "nobody", '
            '"token": true}}',
        },
        tmp_path / "server.log",
    )
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


@pytest.fixture
async def control(server: RestartableServer) -> AsyncIterator[str]:
    """A small HTTP endpoint the node tests call to restart the server."""
    app = web.Application()
    app.router.add_post("/restart", server.restart)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def run(
    *command: str,
    env: dict[str, str] | None = None,
    cwd: Path = JS,
    timeout: float = NODE_RUN_TIMEOUT,
) -> tuple[int, str]:
    """The command's exit code and output; -1 when it was killed after `timeout` seconds."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=dies_with_parent,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
        return -1, output.decode(errors="replace") + f"\n(killed after {timeout}s)"
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def installed() -> None:
    """Skips without node; installs the dev dependencies (`npm ci`) when they are missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the TypeScript SDK")
    if not (JS / "node_modules" / "typescript").is_dir():
        code, output = await run("npm", "ci", "--no-audit", "--no-fund")
        assert code == 0, output


async def api_key(client: Any, account: Account) -> str:
    response = await client.post(
        "/auth/api-keys",
        json={"name": "js-sdk-test", "scopes": ["realtime"]},
        headers=account.headers,
    )
    assert response.status == 201, await response.text()
    return str((await response.json())["key"])


async def test_js_sdk_against_the_real_server(
    client: Any, alice: Account, bob: Account, server: RestartableServer, control: str
) -> None:
    await installed()
    env = {
        **os.environ,
        "RT_BASE_URL": server.base,
        "RT_TOKEN": alice.access_token,
        "RT_USER_ID": str(alice.id),
        "RT_API_KEY": await api_key(client, alice),
        "RT_BOB_TOKEN": bob.access_token,
        "RT_BOB_ID": str(bob.id),
        "RT_CONTROL_URL": control,
        "RT_SUBSCRIPTION_TOKEN_KEY": SUBSCRIPTION_TOKEN_KEY,
    }
    code, output = await run("npm", "test", "--silent", env=env)
    assert code == 0, f"npm test failed ({code}):\n{output}\nserver:\n{server.log_tail()}"
    assert server.restarts == 1, output
    assert "# fail 0" in output, output


BROWSER_SCRIPT = """
async ({ base, token }) => {
  const sdk = await import("/sdk/index.js");
  const http = { baseUrl: base, auth: { token } };
  const opened = (channel) => new Promise((resolve) => (channel.onopen = resolve));
  const reply = (channel, text) => {
    const answer = new Promise((resolve) => (channel.onmessage = (event) => resolve(event.data)));
    channel.send(text);
    return answer;
  };
  const result = { iceServers: (await sdk.iceServers(http)).length };

  // The server peer without signaling: POST /realtime/webrtc/offer, an `echo` data channel.
  let echo;
  const direct = await sdk.connectToServer(http, (pc) => (echo = pc.createDataChannel("echo")));
  await opened(echo);
  result.directEcho = await reply(echo, "over http");
  result.peerId = direct.peerId;
  direct.pc.close();

  // A socket opened with a ticket (no header, no token in the URL), a room joined through
  // it and the server peer called over signaling.
  const client = new sdk.RealtimeClient({
    url: base.replace(/^http/, "ws") + "/realtime/ws",
    auth: { ticket: sdk.ticketFrom(base, token) },
  });
  await client.connect();
  const created = await sdk.requestJson(http, "POST", "/realtime/webrtc/rooms", {
    name: "sdk room",
    media: false,
  });
  const room = new sdk.Room(client, created.id);
  result.participants = (await room.join()).length;
  let echo2;
  await room.call("server", (pc) => (echo2 = pc.createDataChannel("echo")));
  await opened(echo2);
  result.roomEcho = await reply(echo2, "over signaling");

  // An event stream with a ticket, fed by the socket.
  const name = "public:browser-" + Math.random().toString(36).slice(2);
  const events = new sdk.RealtimeEvents({
    url: base,
    channels: [name],
    auth: { ticket: sdk.ticketFrom(base, token) },
  });
  const subscribed = events.channel(name).next("subscribed", 5000);
  await events.start();
  await subscribed;
  const got = events.channel(name).next("publication", 5000);
  await client.publish(name, { from: "browser" });
  result.sse = (await got).data;
  events.close();
  await room.leave();
  client.close();
  return result;
}
"""


async def test_js_sdk_in_chromium(client: Any, alice: Account, server: RestartableServer) -> None:
    """The browser paths: ticket auth, SSE over fetch, and the WebRTC helpers (the server
    peer over HTTP and over signaling), with the built SDK served on the server's origin."""
    await installed()
    code, output = await run("npm", "run", "build", "--silent")
    assert code == 0, output
    dist = JS / "dist"

    async with chromium() as browser:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        async def serve(route: Any) -> None:
            path = route.request.url.split("/sdk/", 1)[1]
            target = (dist / path).resolve()
            assert target.is_relative_to(dist)
            await route.fulfill(path=target, content_type="text/javascript")

        await page.route(f"{server.base}/sdk/**", serve)
        # A document of the server's origin (Chromium opens no WebSocket from a document
        # that `route.fulfill` made up; the SDK's modules may come from there).
        await page.goto(f"{server.base}/health/ready")
        result = await page.evaluate(
            BROWSER_SCRIPT, {"base": server.base, "token": alice.access_token}
        )
        await page.close()
    assert result["directEcho"] == "over http"
    assert result["roomEcho"] == "over signaling"
    assert result["participants"] == 0
    assert result["peerId"]
    assert result["sse"] == {"from": "browser"}
    assert isinstance(result["iceServers"], int)
    assert errors == []


def readme_examples() -> list[str]:
    """The README's Node examples (the browser ones import from "/static/sdk/index.js")."""
    text = (JS / "README.md").read_text()
    blocks = re.findall(r"```js\n(.*?)```", text, flags=re.DOTALL)
    return [block for block in blocks if '"@realtime-server/client"' in block]


async def test_readme_examples_run_as_written(
    client: Any, alice: Account, server: RestartableServer, tmp_path: Path
) -> None:
    """Each Node example of clients/js/README.md, pointed at the test server, runs to its
    end without an error."""
    await installed()
    code, output = await run("npm", "run", "build", "--silent")
    assert code == 0, output
    examples = readme_examples()
    assert len(examples) >= 8
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 a test file\n" * 1000)
    env = {
        **os.environ,
        "ACCESS_TOKEN": alice.access_token,
        "API_KEY": await api_key(client, alice),
        "SUBSCRIPTION_TOKEN_KEY": SUBSCRIPTION_TOKEN_KEY,
    }
    # Inside the package (build/ is ignored by git), so that the package's own name resolves.
    scripts = JS / "build" / "readme"
    scripts.mkdir(parents=True, exist_ok=True)
    ws_base = server.base.replace("http://", "ws://")
    for number, example in enumerate(examples):
        code_text = example.replace("ws://localhost:8000", ws_base)
        code_text = code_text.replace("http://localhost:8000", server.base)
        script = scripts / f"example-{number}.mjs"
        script.write_text(code_text)
        code, output = await run(
            "node", "--experimental-websocket", str(script), env=env, cwd=tmp_path, timeout=30
        )
        if code == -1:
            pytest.fail(f"README example {number} did not end:\n{example}\n{output}")
        assert code == 0, f"README example {number} failed:\n{example}\n{output}"
