"""/docs and /redoc render in a real browser with no internet: every asset is local."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.browser import chromium

pytestmark = pytest.mark.e2e


async def test_swagger_ui_lists_the_operations(client: Any) -> None:
    base = str(client.make_url("/")).rstrip("/")

    def is_foreign(url: str) -> bool:
        return not url.startswith((base, "blob:", "data:"))

    foreign_loaded: list[str] = []
    foreign_blocked: list[str] = []
    async with chromium() as browser:
        page = await browser.new_page()
        page.on(
            "requestfinished",
            lambda r: foreign_loaded.append(r.url) if is_foreign(r.url) else None,
        )
        page.on(
            "requestfailed",
            lambda r: foreign_blocked.append(f"{r.url} {r.failure}") if is_foreign(r.url) else None,
        )
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(f"{base}/docs")
        await page.wait_for_selector(".opblock-summary-path", timeout=15000)
        paths = await page.locator(".opblock-summary-path").all_inner_texts()
        assert "/tasks/example" in " ".join(paths)
        assert "/health/ready" in " ".join(paths)
        await page.goto(f"{base}/redoc")
        heading = page.get_by_role("heading", name="Enqueue the example task")
        await heading.wait_for(timeout=15000)
    # ReDoc always links its logo from a CDN; the page's CSP blocks it before it leaves.
    assert foreign_loaded == []
    assert all(entry.endswith(" csp") for entry in foreign_blocked), foreign_blocked
    assert errors == []
