"""/realtime/webrtc/test in a real browser (chromium's fake camera and microphone): join a
room, send the camera to the server peer and see it come back, the `echo` data channel's
round trip, chat over the data channel bridged to `public:webrtc-lobby` both ways, and a
peer-to-peer call between two pages through signaling. Every page must raise no error, log
no console error and send no request to another origin."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer
from playwright.async_api import Page, expect

from server.app import create_app
from server.kernel.settings import Settings
from tests.conftest import make_settings
from tests.e2e.test_realtime_pages import DeployedServer, log_in, screenshots, ws_publish
from tests.support.accounts import Account
from tests.support.browser import chromium

pytestmark = pytest.mark.e2e

PATH = "/realtime/webrtc/test"
CHAT = "public:webrtc-lobby"
__all__ = ["screenshots"]  # the fixture, shared with the WebSocket page's tests
FIRST_FRAME = 20_000  # ms; the server peer re-encodes the video (aiortc, in software)


@pytest.fixture
def app(settings: Settings) -> web.Application:
    """The server peer gathers loopback candidates only (the browser has them too)."""
    return create_app(
        make_settings(POSTGRES_DB=settings.POSTGRES_DB, ICE_HOST_ADDRESSES="127.0.0.1")
    )


@pytest.fixture
async def client(aiohttp_client: Any, app: web.Application) -> Any:
    server: BaseTestServer = DeployedServer(app)
    return await aiohttp_client(server)


@asynccontextmanager
async def browser_pages(client: Any, count: int) -> AsyncIterator[tuple[list[Page], str]]:
    """Pages in separate browser contexts (separate users) on the live test server; on the
    way out, asserts that none raised an error, logged a console error or sent a request
    (HTTP or WebSocket) anywhere but this origin."""
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
        pages = []
        for n in range(count):
            context = await browser.new_context(permissions=["camera", "microphone"])
            page = await context.new_page()
            page.on("pageerror", lambda error, n=n: errors.append(f"page {n}: {error}"))
            page.on(
                "console",
                lambda m, n=n: errors.append(f"page {n}: {m.text}") if m.type == "error" else None,
            )
            page.on("request", lambda request: check(request.url))
            page.on("websocket", lambda ws: check(ws.url))
            pages.append(page)
        try:
            yield pages, base
        except BaseException:
            for page in pages:
                print(await page_state(page))  # shown by pytest with the failure
            raise
        for page in pages:
            await page.context.close()
    assert errors == []
    assert foreign == []


async def page_state(page: Page) -> str:
    """What the page shows: its status and states, the chat and the end of its log."""
    return str(
        await page.evaluate(
            """() => [
            ...document.querySelectorAll('#status, .state, #echo-rtt, #chat li'),
            ...[...document.querySelectorAll('#log li')].slice(-40),
        ].map((e) => `${e.id || e.dataset.type || e.dataset.kind}: ${e.textContent}`)
         .join('\\n')"""
        )
    )


async def enter(page: Page, base: str, account: Account) -> None:
    """Log in and connect signaling."""
    await log_in(page, base, PATH, account.username, account.password)
    await page.click("#connect-button")
    await expect(page.locator("#signaling-state")).to_have_text(f"connected as user {account.id}")


async def create_room(page: Page, name: str) -> str:
    """Create a room on the page; its id (the page fills it in for joining)."""
    await page.fill("#room-name", name)
    await page.fill("#room-max", "4")
    await page.click("#create-room-button")
    await expect(page.locator("#status")).to_have_text(f'room "{name}" created: join it')
    room_id = await page.input_value("#room-id")
    assert uuid.UUID(room_id)
    return room_id


async def join(page: Page, room_id: str) -> None:
    await page.fill("#room-id", room_id)
    await page.click("#join-button")
    await expect(page.locator("#room-state")).to_contain_text(room_id)
    await expect(page.locator("#leave-button")).to_be_enabled()


async def first_frame(page: Page, video_id: str, timeout: float = FIRST_FRAME) -> None:
    """The video element decoded a frame of what it plays."""
    await page.wait_for_function(
        """(id) => {
            const video = document.getElementById(id);
            return video !== null && video.readyState >= 2 && video.videoWidth > 0;
        }""",
        arg=video_id,
        timeout=timeout,
    )


async def no_signaling_errors(page: Page) -> None:
    errors = page.locator('#log li[data-dir="in"][data-type="error"]')
    assert await errors.count() == 0, await errors.all_inner_texts()


async def next_publication(ws: Any, channel: str, timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame: dict[str, Any] = await ws.receive_json()
            if frame.get("type") == "publication" and frame.get("channel") == channel:
                return frame


async def test_camera_echo_data_channels_and_chat(
    client: Any, alice: Account, bob: Account, screenshots: Path
) -> None:
    watcher = await client.ws_connect("/realtime/ws", headers=bob.headers)
    assert (await watcher.receive_json(timeout=5))["type"] == "connected"
    await watcher.send_json({"type": "subscribe", "channel": CHAT, "id": "sub"})
    assert (await watcher.receive_json(timeout=5))["type"] == "subscribed"
    async with browser_pages(client, 1) as ([page], base):
        await enter(page, base, alice)
        assert await page.evaluate("() => localStorage.length + sessionStorage.length") == 0
        room_id = await create_room(page, f"camera {uuid.uuid4().hex[:6]}")
        await join(page, room_id)
        await expect(page.locator("#participants li")).to_have_count(0)

        started = time.monotonic()
        await page.click("#camera-button")
        await expect(page.locator("#server-state")).to_have_text("connected", timeout=15000)
        connected = time.monotonic() - started
        await first_frame(page, "local-video")
        await first_frame(page, "remote-video")
        echoed = time.monotonic() - started
        tracks = await page.evaluate(
            "() => document.getElementById('remote-video').srcObject.getTracks()"
            ".map((t) => t.kind).sort()"
        )
        assert tracks == ["audio", "video"]

        await expect(page.locator("#echo-state")).to_have_text("open")
        await page.click("#echo-button")
        await expect(page.locator("#echo-rtt")).to_have_attribute("data-ms", re.compile(r"^\d"))
        rtt = float(await page.locator("#echo-rtt").get_attribute("data-ms") or "nan")
        assert 0 <= rtt < 5000

        # Page -> bridge -> hub channel: the test's subscriber gets it, and so does the page
        # (its bridge is subscribed too), which also proves the bridge's subscription is live.
        await expect(page.locator("#chat-state")).to_have_text("open")
        text = f"hello from the page {uuid.uuid4().hex[:6]}"
        await page.fill("#chat-input", text)
        await page.click("#chat-send-button")
        publication = await next_publication(watcher, CHAT)
        assert publication["data"] == {"text": text}
        assert publication["from"]["user_id"] == alice.id
        chat = page.locator('#chat li[data-kind="publication"]')
        await expect(chat).to_have_count(1)
        await expect(chat.nth(0)).to_have_text(f"user {alice.id}: {text}")

        # Hub channel -> bridge -> page.
        await ws_publish(watcher, CHAT, {"text": "hello from the test"})
        await expect(chat).to_have_count(2)
        await expect(chat.nth(1)).to_have_text(f"user {bob.id}: hello from the test")
        presence = page.locator('#chat li[data-kind="presence"]')
        await expect(presence.first).to_have_text(f"user {alice.id} joined (webrtc)")
        await expect(page.locator('#chat li[data-kind="error"]')).to_have_count(0)
        await no_signaling_errors(page)
        # The SDK offers to the server peer with every candidate in the SDP (aiortc answers
        # at once, with all of its own): the log shows their types.
        offers = page.locator('#log li[data-dir="out"][data-type="offer"]')
        await expect(offers).to_have_count(1)
        offer = await offers.inner_text()
        assert '"to":"server"' in offer and re.search(r"candidates: \d+ host\)", offer), offer
        await page.screenshot(path=screenshots / "webrtc-test.png", full_page=True)
        print(
            f"server peer connected in {connected:.2f} s, first echoed frame after "
            f"{echoed:.2f} s, echo round trip {rtt:.1f} ms"
        )

        await page.click("#leave-button")
        await expect(page.locator("#room-state")).to_have_text("not in a room")
        await expect(page.locator("#server-state")).to_have_text("closed")
    await watcher.close()


async def test_two_pages_see_each_other_and_call(
    client: Any, alice: Account, bob: Account, screenshots: Path
) -> None:
    async with browser_pages(client, 2) as ([one, two], base):
        await enter(one, base, alice)
        await enter(two, base, bob)
        room_id = await create_room(one, f"call {uuid.uuid4().hex[:6]}")
        await join(one, room_id)
        await join(two, room_id)

        alice_peer = await two.locator("#participants li").get_attribute("data-peer-id")
        await expect(two.locator("#participants li")).to_have_attribute(
            "data-user-id", str(alice.id)
        )
        others = one.locator("#participants li")
        await expect(others).to_have_count(1)  # peer-joined
        await expect(others).to_have_attribute("data-user-id", str(bob.id))
        bob_peer = await others.get_attribute("data-peer-id")
        assert alice_peer and bob_peer and alice_peer != bob_peer
        assert alice_peer in await one.locator("#room-state").inner_text()

        started = time.monotonic()
        await one.click(f"#call-{bob_peer}")
        await expect(one.locator(f"#call-{bob_peer}")).to_be_disabled()
        await expect(one.locator(f"#peer-state-{bob_peer}")).to_have_text(
            "connected", timeout=15000
        )
        await expect(two.locator(f"#peer-state-{alice_peer}")).to_have_text(
            "connected", timeout=15000
        )
        connected = time.monotonic() - started
        await first_frame(one, f"peer-video-{bob_peer}")
        await first_frame(two, f"peer-video-{alice_peer}")
        shown = time.monotonic() - started
        await no_signaling_errors(one)
        await no_signaling_errors(two)
        # The call's candidates were trickled through signaling, to the callee only.
        sent = one.locator('#log li[data-dir="out"][data-type="candidate"]')
        assert await sent.count() >= 1
        assert all(f'"to":"{bob_peer}"' in line for line in await sent.all_inner_texts())
        await two.screenshot(path=screenshots / "webrtc-call.png", full_page=True)
        print(f"call connected in {connected:.2f} s, both videos showing after {shown:.2f} s")

        # Bob leaves: alice's list empties and her call with him ends.
        await two.click("#leave-button")
        await expect(others).to_have_count(0)
        await expect(one.locator(f"#peer-video-{bob_peer}")).to_have_count(0)


async def test_page_is_served_under_the_strict_csp(client: Any) -> None:
    """Only this origin's scripts, no inline ones: the page is one ES module (webrtc-test.js)
    importing the SDK from /static/sdk/."""
    response = await client.get(PATH)
    assert response.status == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "media-src 'self' blob: mediastream:" in csp
    html = await response.text()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts == ['<script type="module" src="/static/realtime/webrtc-test.js">']
    module = await client.get("/static/realtime/webrtc-test.js")
    assert "from '/static/sdk/index.js'" in await module.text()
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html)  # no inline event handlers
