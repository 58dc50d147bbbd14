"""/realtime/sse-test in a real browser (the SDK's RealtimeEvents): live events, disconnect,
resume with Last-Event-ID and see exactly the missed events; a position beyond the history
shows a gap and the stream goes on live; the server ending the stream is shown."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.e2e.test_realtime_pages import browser_page, log_in, screenshots, ws_publish
from tests.support.accounts import Account

pytestmark = pytest.mark.e2e
__all__ = ["screenshots"]  # the fixture, shared with the WebSocket page's tests


async def open_stream(page: Page, channel: str, stream: int) -> None:
    await page.fill("#channels", channel)
    await page.click("#connect-button")
    connected = page.locator(f'#log li[data-event="connected"][data-stream="{stream}"]')
    await expect(connected).to_have_count(1)


async def publications(page: Page, stream: int) -> list[tuple[str, Any]]:
    """(id, data) of the publications the page logged for one stream."""
    items = page.locator(f'#log li[data-event="publication"][data-stream="{stream}"]')
    result = []
    for item in await items.all():
        text = await item.text_content() or ""
        payload = json.loads(text[text.index("{") :])
        result.append((await item.get_attribute("data-id") or "", payload["data"]))
    return result


def expected(acks: dict[int, dict[str, Any]]) -> list[tuple[str, Any]]:
    """The (id, data) the page should show for publications {"n": n} with these acks."""
    return [(ack["cursor"], {"n": n}) for n, ack in acks.items()]


async def test_live_events_disconnect_and_resume(client: Any, alice: Account) -> None:
    channel = f"public:sse-page-{uuid.uuid4().hex[:8]}"
    ws = await client.ws_connect("/realtime/ws", headers=alice.headers)
    assert (await ws.receive_json(timeout=5))["type"] == "connected"
    async with browser_page(client) as (page, base):
        await log_in(page, base, "/realtime/sse-test", alice.email, alice.password)
        assert await page.evaluate("() => localStorage.length + sessionStorage.length") == 0
        await open_stream(page, channel, 1)

        live = {n: await ws_publish(ws, channel, {"n": n}) for n in (1, 2)}
        first = page.locator('#log li[data-event="publication"][data-stream="1"]')
        await expect(first).to_have_count(2)
        assert await publications(page, 1) == expected(live)
        await expect(page.locator("#last-id")).to_have_text(live[2]["cursor"])

        await page.click("#disconnect-button")
        await expect(page.locator("#status")).to_have_text("disconnected")
        missed = {n: await ws_publish(ws, channel, {"n": n}) for n in (3, 4, 5)}
        await asyncio.sleep(0.3)
        assert await first.count() == 2  # nothing arrives on a closed stream

        await page.click("#resume-button")
        await expect(page.locator('#log li[data-stream="2"]').first).to_contain_text(
            f"resuming since {live[2]['cursor']}"
        )
        replayed = page.locator('#log li[data-event="publication"][data-stream="2"]')
        await expect(replayed).to_have_count(3)
        await asyncio.sleep(0.5)  # and no more than those
        assert await publications(page, 2) == expected(missed)
        await expect(page.locator("#last-id")).to_have_text(missed[5]["cursor"])

        # The resumed stream is live again.
        after = await ws_publish(ws, channel, {"n": 6})
        await expect(replayed).to_have_count(4)
        assert (await publications(page, 2))[-1] == (after["cursor"], {"n": 6})
        await page.click("#disconnect-button")
    await ws.close()


async def test_gap_then_live_and_the_server_ending_the_stream(
    client: Any, alice: Account, screenshots: Path
) -> None:
    channel = f"public:sse-page-{uuid.uuid4().hex[:8]}"
    ws = await client.ws_connect("/realtime/ws", headers=alice.headers)
    assert (await ws.receive_json(timeout=5))["type"] == "connected"
    async with browser_page(client) as (page, base):
        await log_in(page, base, "/realtime/sse-test", alice.username, alice.password)
        await open_stream(page, channel, 1)
        await page.click("#disconnect-button")
        # A position the server cannot recover from (as if the history had expired): the
        # server says recovery-failed and ends the stream (close 1000); the SDK shows a gap
        # and reconnects from the position the server gave, live.
        await page.fill("#resume-from", "deadbeef:5")
        await page.click("#resume-button")
        gap = page.locator('#log li[data-event="gap"][data-stream="2"]')
        await expect(gap).to_have_count(1)
        await expect(gap).to_contain_text(channel)
        disconnected = page.locator('#log li[data-event="disconnected"][data-stream="2"]')
        await expect(disconnected).to_have_count(1)
        await expect(disconnected).to_contain_text("code 1000")
        connected = page.locator('#log li[data-event="connected"][data-stream="2"]')
        await expect(connected).to_have_count(2)
        await expect(connected.nth(1)).to_contain_text('"reconnected":true')
        live = await ws_publish(ws, channel, {"n": 1})
        await expect(page.locator("#last-id")).to_have_text(live["cursor"])
        assert await publications(page, 2) == [(live["cursor"], {"n": 1})]

        # The server ends a live stream when the session ends: the page shows why.
        response = await client.post("/auth/logout-all", headers=alice.headers)
        assert response.status == 204
        closed = page.locator('#log li[data-event="closed"][data-stream="2"]')
        await expect(closed).to_have_count(1)
        await expect(closed).to_contain_text('"code":4003')
        await expect(page.locator("#status")).to_contain_text("the server ended the stream")
        await expect(page.locator("#connect-button")).to_be_enabled()
        await expect(page.locator("#resume-from")).to_have_value(live["cursor"])
        await page.screenshot(path=screenshots / "sse-test.png", full_page=True)
    await ws.close()
