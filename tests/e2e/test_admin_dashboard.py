"""/admin in a real browser: an admin logs in and sees their own connection counted (in
snapshots pushed on `admin:dashboard`), a dead
letter appears and is requeued, a user is disconnected (and the action shows in the live
activity log); a plain user is refused. Screenshots go to $PAGE_SCREENSHOTS or tmp_path."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from server.kernel.settings import Settings
from tests.integration.test_admin_api import bury
from tests.integration.test_admin_api import settings as own_queues
from tests.support.accounts import Account
from tests.support.browser import chromium
from tests.support.frames import close_code

pytestmark = pytest.mark.e2e
settings = own_queues  # this test's own RabbitMQ queues (its dead letters are counted)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("PAGE_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


@asynccontextmanager
async def dashboard(client: Any) -> AsyncIterator[Page]:
    """/admin on the live test server; on the way out, asserts that the page raised no
    error (a refused request's own console line, "Failed to load resource", aside)."""
    errors: list[str] = []
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 1100})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and "Failed to load resource" not in m.text
                else None
            ),
        )
        await page.goto(str(client.make_url("/admin")))
        yield page
        await page.close()
    assert errors == []


async def log_in(page: Page, account: Account) -> None:
    await page.fill("#login-email", account.email)
    await page.fill("#login-password", account.password)
    await page.click("#login-button")


async def test_an_admin_watches_requeues_and_disconnects(
    client: Any, admin: Account, alice: Account, settings: Settings, screenshots: Path
) -> None:
    message_id = f"m-{uuid.uuid4().hex[:12]}"
    logging.getLogger("tests.admin").error("the dashboard test logged this")
    await bury(settings, "orders", message_id, "the payment service timed out")
    async with dashboard(client) as page:
        await log_in(page, admin)
        await expect(page.locator("#status")).to_have_text("live", timeout=10_000)
        # Pushed by the node on `admin:dashboard` (handlers/admin_live.py), not polled.
        await expect(page.locator("#updated")).to_contain_text("live snapshot", timeout=10_000)
        # The dashboard's own WebSocket is counted, under its user.
        own = page.locator(f"#users tr[data-user-id='{admin.id}']")
        await expect(own).to_contain_text("ws 1")
        await expect(page.locator("#nodes tbody tr").first).to_contain_text("ws ")
        await expect(page.locator("#queues")).to_contain_text("orders")
        await expect(page.locator("#errors")).to_contain_text("the dashboard test logged this")

        dead = page.locator(f"#dead tr[data-message-id='{message_id}']")
        await expect(dead).to_contain_text("the payment service timed out")
        await expect(dead).to_contain_text("orders")

        ws = await client.ws_connect("/realtime/ws", headers=alice.headers)
        assert (await ws.receive_json(timeout=5))["type"] == "connected"
        theirs = page.locator(f"#users tr[data-user-id='{alice.id}']")
        await expect(theirs).to_contain_text("ws 1")
        await page.screenshot(path=str(screenshots / "admin-dashboard.png"), full_page=True)

        await dead.get_by_role("button", name="requeue").click()
        await expect(page.locator("#status")).to_contain_text("requeued 1 message(s)")
        await expect(dead).to_have_count(0)
        await expect(page.locator("#dead")).to_contain_text("no dead letter")

        await theirs.get_by_role("button", name="disconnect").click()
        assert await close_code(ws) == 4003
        await expect(theirs).to_have_count(0)
        activity = page.locator("#log")
        await expect(activity).to_contain_text(f"admin {admin.id} requeued 1 dead letter(s)")
        await expect(activity).to_contain_text(f"admin {admin.id} disconnected user {alice.id}")
        await page.screenshot(path=str(screenshots / "admin-after-actions.png"), full_page=True)


async def test_a_plain_user_is_refused(client: Any, alice: Account, screenshots: Path) -> None:
    async with dashboard(client) as page:
        await log_in(page, alice)
        await expect(page.locator("#status")).to_contain_text("insufficient_role")
        assert await page.locator("#nodes").is_hidden()
        await expect(page.locator("#login-section")).to_be_visible()
        await page.screenshot(path=str(screenshots / "admin-refused.png"), full_page=True)


async def test_an_admin_revokes_a_session_and_closes_a_room(
    client: Any, admin: Account, bob: Account, screenshots: Path
) -> None:
    created = await client.post(
        "/realtime/webrtc/rooms", json={"name": "weekly sync"}, headers=bob.headers
    )
    assert created.status == 201
    room_id = (await created.json())["id"]
    ws = await client.ws_connect("/realtime/ws", headers=bob.headers)
    assert (await ws.receive_json(timeout=5))["type"] == "connected"
    async with dashboard(client) as page:
        await log_in(page, admin)
        await expect(page.locator("#status")).to_have_text("live", timeout=10_000)
        theirs = page.locator(f"#users tr[data-user-id='{bob.id}']")
        await theirs.get_by_role("button", name="sessions").click()
        await expect(page.locator("#sessions-user")).to_have_text(str(bob.id))
        await expect(page.locator("#sessions tbody tr")).to_have_count(1)
        await page.locator("#sessions").get_by_role("button", name="revoke").click()
        await expect(page.locator("#sessions")).to_contain_text("no live session")
        assert await close_code(ws) == 4003
        assert (await client.get("/users/me", headers=bob.headers)).status == 401

        room = page.locator("#rooms tr", has_text="weekly sync")
        await expect(room).to_contain_text(f"user {bob.id}")

        async def accept(dialog: Any) -> None:
            await dialog.accept()

        page.once("dialog", accept)
        await room.get_by_role("button", name="close").click()
        await expect(room).to_have_count(0)
        await expect(page.locator("#rooms")).to_contain_text("no room")
        activity = page.locator("#log")
        await expect(activity).to_contain_text(
            f"admin {admin.id} revoked a session of user {bob.id}"
        )
        await expect(activity).to_contain_text(f"admin {admin.id} closed room {room_id}")
        await page.screenshot(path=str(screenshots / "admin-sessions-rooms.png"), full_page=True)
