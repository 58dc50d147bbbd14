"""/realtime/webrtc/test in Chromium with "relay only" (iceTransportPolicy "relay") and the
real coturn: the page fetches its STUN/TURN servers from /realtime/webrtc/ice-servers and
reaches the server peer, and another page, through the relay only."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer
from playwright.async_api import Page, expect

from server.app import create_app
from server.kernel.settings import Settings
from tests.conftest import make_settings
from tests.e2e.test_realtime_pages import DeployedServer
from tests.e2e.test_webrtc_page import (
    browser_pages,
    create_room,
    enter,
    first_frame,
    join,
    no_signaling_errors,
)
from tests.support.accounts import Account
from tests.support.coturn import Coturn, coturn

pytestmark = pytest.mark.e2e

SECRET = "browser-turn-secret-0123456789abcdef"

# The nominated pair of a connection: the type of its local and remote candidates.
SELECTED_PAIR = """async (pc) => {
    const stats = [...(await pc.getStats()).values()];
    const byId = new Map(stats.map((s) => [s.id, s]));
    const pair = stats.find((s) => s.type === 'candidate-pair' && s.nominated
                                 && s.state === 'succeeded');
    if (!pair) return null;
    return [byId.get(pair.localCandidateId).candidateType,
            byId.get(pair.remoteCandidateId).candidateType];
}"""


@pytest.fixture
async def turn(tmp_path: Path) -> Any:
    async with coturn(tmp_path / "coturn", SECRET) as server:
        yield server


@pytest.fixture
def app(settings: Settings, turn: Coturn) -> web.Application:
    return create_app(
        make_settings(
            POSTGRES_DB=settings.POSTGRES_DB,
            ICE_HOST_ADDRESSES="127.0.0.1",
            TURN_URLS=turn.url,
            TURN_SECRET=SECRET,
        )
    )


@pytest.fixture
async def client(aiohttp_client: Any, app: web.Application) -> Any:
    server: BaseTestServer = DeployedServer(app)
    return await aiohttp_client(server)


async def relay_only(page: Page, base: str, account: Account, turn: Coturn) -> None:
    await enter(page, base, account)
    await expect(page.locator("#ice-servers")).to_have_text(turn.url)
    await page.check("#relay-only")


async def only_relay_candidates_sent(page: Page) -> None:
    """Trickled to a member (a call) through signaling."""
    sent = page.locator('#log li[data-dir="out"][data-type="candidate"]')
    lines = [line for line in await sent.all_inner_texts() if '"candidate":null' not in line]
    assert lines, "no candidate was trickled"
    assert all(" typ relay " in line for line in lines), lines


async def only_relay_candidates_offered(page: Page) -> None:
    """In the offer to the server peer (the SDK sends it with every candidate): the log
    shows the types of the candidates in each SDP."""
    offers = page.locator('#log li[data-dir="out"][data-type="offer"]')
    text = await offers.inner_text()
    assert re.search(r"candidates: \d+ relay\)", text), text


async def test_relay_only_page_reaches_the_server_peer(
    client: Any, alice: Account, turn: Coturn
) -> None:
    async with browser_pages(client, 1) as ([page], base):
        await relay_only(page, base, alice, turn)
        await join(page, await create_room(page, f"turn {uuid.uuid4().hex[:6]}"))
        await page.click("#camera-button")
        await expect(page.locator("#server-state")).to_have_text("connected", timeout=15000)
        await expect(page.locator("#echo-state")).to_have_text("open")
        await page.click("#echo-button")
        await expect(page.locator("#echo-rtt")).to_have_attribute("data-ms", re.compile(r"^\d"))
        await first_frame(page, "remote-video")
        pair = await page.evaluate(f"(async () => ({SELECTED_PAIR})(room.peers.get('server')))()")
        assert pair is not None and pair[0] == "relay", pair
        await only_relay_candidates_offered(page)
        await no_signaling_errors(page)
    log = turn.log_text()
    assert re.search(rf"user <\d+:{alice.id}>: .*ALLOCATE processed, success", log), log[-3000:]
    assert SECRET not in log


async def test_two_relay_only_pages_call_each_other(
    client: Any, alice: Account, bob: Account, turn: Coturn
) -> None:
    async with browser_pages(client, 2) as ([one, two], base):
        await relay_only(one, base, alice, turn)
        await relay_only(two, base, bob, turn)
        room_id = await create_room(one, f"turn call {uuid.uuid4().hex[:6]}")
        await join(one, room_id)
        await join(two, room_id)
        others = one.locator("#participants li")
        await expect(others).to_have_count(1)
        bob_peer = await others.get_attribute("data-peer-id")
        alice_peer = await two.locator("#participants li").get_attribute("data-peer-id")
        await one.click(f"#call-{bob_peer}")
        for page, peer in ((one, bob_peer), (two, alice_peer)):
            await expect(page.locator(f"#peer-state-{peer}")).to_have_text(
                "connected", timeout=15000
            )
        await first_frame(one, f"peer-video-{bob_peer}")
        await first_frame(two, f"peer-video-{alice_peer}")
        for page, peer in ((one, bob_peer), (two, alice_peer)):
            pair = await page.evaluate(
                f"(async (id) => ({SELECTED_PAIR})(room.peers.get(id)))", peer
            )
            assert pair == ["relay", "relay"], pair
            await only_relay_candidates_sent(page)
            await no_signaling_errors(page)
