"""/realtime/test in a real browser: log in, connect with a ticket, subscribe, publish both
ways, and send files (progress, SHA-256, drop the socket mid-upload and resume)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestServer
from playwright.async_api import Page, expect

from server.kernel.settings import Settings
from tests.support.accounts import Account
from tests.support.browser import chromium

pytestmark = pytest.mark.e2e

MB = 1024 * 1024
DOWNLOAD = re.compile(r"^/realtime/files/[0-9a-f-]{36}\?ticket=.+$")


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the page tests leave screenshots: $PAGE_SCREENSHOTS (to look at them after the
    run), or the test's own temporary directory."""
    target = Path(os.environ.get("PAGE_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture
def settings(base_settings: Settings, tmp_path: Path) -> Settings:
    """Uploads go to the test's own directory."""
    return base_settings.model_copy(update={"UPLOAD_DIR": str(tmp_path / "uploads")})


class DeployedServer(TestServer):
    """The app served as `web.run_app` serves it: a handler is not cancelled when its client
    disconnects. aiohttp's TestServer cancels it, and a cancellation while the WebSocket
    handler pauses an upload leaks the open `.part` file (Uploads._close_handle: the
    `to_thread(_close)` is cancelled before it runs), which fails the drop-and-resume test
    now and then with an unraisable ResourceWarning."""

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        kwargs["handler_cancellation"] = False
        return await super()._make_runner(**kwargs)


@pytest.fixture
async def client(aiohttp_client: Any, app: web.Application) -> Any:
    server: BaseTestServer = DeployedServer(app)
    return await aiohttp_client(server)


@asynccontextmanager
async def browser_page(client: Any) -> AsyncIterator[tuple[Page, str]]:
    """A page on the live test server; on the way out, asserts that the page raised no
    errors and sent no request (HTTP or WebSocket) anywhere but this origin."""
    base = str(client.make_url("/")).rstrip("/")
    host = urlsplit(base).netloc
    errors: list[str] = []
    foreign: list[str] = []

    def check(url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("data", "blob") and (
            parts.netloc != host or parts.scheme not in ("http", "ws")
        ):
            foreign.append(url)

    async with chromium() as browser:
        page = await browser.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("request", lambda request: check(request.url))
        page.on("websocket", lambda ws: check(ws.url))
        try:
            yield page, base
        except BaseException:
            print(await page_state(page))  # shown by pytest with the failure
            raise
        await page.close()
    assert errors == []
    assert foreign == []


async def page_state(page: Page) -> str:
    """What the page shows: its status lines and the end of its log."""
    return str(
        await page.evaluate(
            """() => [
            ...document.querySelectorAll('[id$=status], #progress-text'),
            ...[...document.querySelectorAll('#log li')].slice(-60),
        ].map((e) => `${e.id || e.dataset.type || e.dataset.event}: ${e.textContent}`)
         .join('\\n')"""
        )
    )


async def log_in(page: Page, base: str, path: str, login: str, password: str) -> None:
    await page.goto(f"{base}{path}")
    await page.fill("#login-email", login)
    await page.fill("#login-password", password)
    await page.click("#login-button")
    await expect(page.locator("#status")).to_have_text("logged in")


async def ws_publish(ws: Any, channel: str, data: Any) -> dict[str, Any]:
    """Publish from a test connection; the ack (skipping other frames)."""
    ident = uuid.uuid4().hex
    await ws.send_json({"type": "publish", "channel": channel, "data": data, "id": ident})
    async with asyncio.timeout(5):
        while True:
            frame: dict[str, Any] = await ws.receive_json()
            if frame.get("id") == ident:
                assert frame["type"] == "ack", frame
                return frame


async def connect_page(page: Page, account: Account) -> None:
    await page.click("#connect-button")
    await expect(page.locator("#connected")).to_contain_text(f'"user_id":{account.id}')
    await expect(page.locator("#status")).to_have_text(f"connected as user {account.id}")


async def test_login_connect_subscribe_publish_both_ways(
    client: Any, alice: Account, screenshots: Path
) -> None:
    channel = f"public:page-{uuid.uuid4().hex[:8]}"
    async with browser_page(client) as (page, base):
        await log_in(page, base, "/realtime/test", alice.username, alice.password)
        assert await page.evaluate("() => localStorage.length + sessionStorage.length") == 0
        await connect_page(page, alice)
        await page.fill("#channel", channel)
        await page.click("#subscribe-button")
        await expect(page.locator("#subscriptions")).to_have_text(channel)
        await expect(page.locator("#presence li")).to_have_count(1)

        await page.fill("#publish-data", '{"origin": "page", "n": 1}')
        await page.click("#publish-button")
        publications = page.locator('#log li[data-dir="in"][data-type="publication"]')
        await expect(publications).to_have_count(1)
        await expect(publications.nth(0)).to_contain_text('"data":{"origin":"page","n":1}')
        await expect(page.locator('#log li[data-dir="in"][data-type="ack"]')).to_have_count(1)

        ws = await client.ws_connect("/realtime/ws", headers=alice.headers)
        assert (await ws.receive_json(timeout=5))["type"] == "connected"
        await ws.send_json({"type": "subscribe", "channel": channel})
        ack = await ws_publish(ws, channel, {"origin": "test", "n": 2})
        await expect(publications).to_have_count(2)
        await expect(publications.nth(1)).to_contain_text('"data":{"origin":"test","n":2}')
        await expect(publications.nth(1)).to_contain_text(ack["cursor"])
        # The test's connection joined: the page refreshed the channel's presence.
        await expect(page.locator("#presence li")).to_have_count(2)
        await ws.close()
        await expect(page.locator("#presence li")).to_have_count(1)

        # A binary message: echoed without a channel, then published on the channel.
        await page.fill("#binary-text", "bytes from the page")
        await page.click("#binary-button")
        received = page.locator("#binary-received")
        await expect(received).to_have_text("text/plain, 19 bytes (echo): bytes from the page")
        await page.check("#binary-to-channel")
        await page.click("#binary-button")
        await expect(received).to_have_text(
            f"text/plain, 19 bytes on {channel}: bytes from the page"
        )
        await page.screenshot(path=screenshots / "realtime-test.png", full_page=True)

        await page.click("#unsubscribe-button")
        await expect(page.locator("#subscriptions")).to_have_text("none")


async def test_pages_load_the_sdk_from_this_server(client: Any) -> None:
    """Each page is one ES module that imports the SDK's committed build from /static/sdk/,
    served as JavaScript (a module script with another type is refused under nosniff)."""
    for path, module in (
        ("/realtime/test", "test.js"),
        ("/realtime/sse-test", "sse-test.js"),
        ("/realtime/webrtc/test", "webrtc-test.js"),
    ):
        html = await (await client.get(path)).text()
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert scripts == [f'<script type="module" src="/static/realtime/{module}">'], path
        assert '<link rel="stylesheet" href="/static/realtime/style.css">' in html
    seen: set[str] = set()
    todo = ["index.js"]
    while todo:  # every module the SDK's index imports, transitively
        name = todo.pop()
        response = await client.get(f"/static/sdk/{name}")
        assert response.status == 200, name
        # Python's mimetypes says one or the other depending on the machine: both are JS.
        assert response.content_type in ("text/javascript", "application/javascript"), name
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        text = await response.text()
        assert text.startswith("// Generated from clients/js/src")
        seen.add(name)
        todo += [n for n in re.findall(r'from "\./([\w-]+\.js)"', text) if n not in seen]
    assert {"client.js", "sse.js", "webrtc.js", "files.js"} <= seen
    assert (await client.get("/static/sdk/README.md")).status == 200
    assert (await client.get("/static/realtime/common.js")).status == 404  # replaced


async def test_file_upload_with_progress_and_download(
    client: Any, alice: Account, tmp_path: Path
) -> None:
    data = os.urandom(3 * MB + 12345)
    source = tmp_path / "three.bin"
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    async with browser_page(client) as (page, base):
        await log_in(page, base, "/realtime/test", alice.email, alice.password)
        await connect_page(page, alice)
        await page.set_input_files("#file-input", str(source))
        await page.click("#send-file-button")
        await expect(page.locator("#file-sha256")).to_have_text(digest, timeout=30000)
        assert await page.locator("#progress").evaluate("p => p.value") == 100
        await expect(page.locator("#progress-text")).to_contain_text("100%")
        done = page.locator('#log li[data-type="file.done"]')
        await expect(done).to_have_count(1)
        await expect(done).to_contain_text(f'"sha256":"{digest}"')
        await expect(page.locator("#upload-status")).to_contain_text("sha256 matches")
        # Acks arrived as the chunks did, each within the credit window.
        acks = page.locator('#log li[data-type="file.ack"]')
        assert await acks.count() >= 12
        link = page.locator("#download-link")
        await expect(link).to_have_attribute("href", DOWNLOAD)
        href = await link.get_attribute("href")
        assert href is not None
    response = await client.get(href)
    assert response.status == 200
    assert await response.read() == data
    again = await client.get(href)  # the ticket was single-use
    assert again.status == 401


async def test_drop_mid_upload_and_resume(
    client: Any, alice: Account, tmp_path: Path, screenshots: Path
) -> None:
    """The SDK reconnects by itself (a new ticket) and the upload goes on from the offset
    the server's `file.ready` gives."""
    data = os.urandom(20 * MB + 777)
    source = tmp_path / "twenty.bin"
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    async with browser_page(client) as (page, base):
        await log_in(page, base, "/realtime/test?chunkDelayMs=50", alice.email, alice.password)
        await connect_page(page, alice)
        await page.set_input_files("#file-input", str(source))
        await page.click("#send-file-button")
        # Acknowledged bytes trail the sent ones by up to the credit window (8 MB): at 10%
        # acknowledged about half is sent, and the rest takes seconds at 50 ms per chunk.
        await page.wait_for_function(
            "() => document.getElementById('progress').value >= 10", timeout=30000
        )
        await page.click("#drop-button")
        await expect(page.locator("#upload-status")).to_contain_text("resum")
        await expect(page.locator('#log li[data-type="info"]').first).to_contain_text(
            "connection lost"
        )
        await expect(page.locator("#file-sha256")).to_have_text(digest, timeout=60000)
        assert await page.locator("#progress").evaluate("p => p.value") == 100
        await expect(page.locator("#progress-text")).to_contain_text("resumed 1×")
        await expect(page.locator("#status")).to_have_text(
            f"connected as user {alice.id} (reconnected)"
        )
        readies = page.locator('#log li[data-dir="in"][data-type="file.ready"]')
        await expect(readies).to_have_count(2)
        resumed = await readies.nth(1).inner_text()
        offset = int(resumed.split('"offset":')[1].split(",")[0])
        assert 0 < offset < len(data)
        begins = page.locator('#log li[data-dir="out"][data-type="file.begin"]')
        assert '"upload_id":' in await begins.nth(1).inner_text()
        errors = page.locator('#log li[data-dir="in"][data-type="error"]')
        assert await errors.count() == 0, await errors.all_inner_texts()
        await page.screenshot(path=screenshots / "realtime-test-upload.png", full_page=True)
        href = await page.locator("#download-link").get_attribute("href")
        assert href is not None
    response = await client.get(href)
    assert response.status == 200
    assert hashlib.sha256(await response.read()).hexdigest() == digest
