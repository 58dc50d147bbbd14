"""GET /admin: the dashboard page, public (it holds nothing), under the strict CSP of the
test pages, with every script and stylesheet served by this server (no CDN)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from handlers.admin_page import PAGE
from handlers.pages import CSP
from tests.integration.test_http_edge import assert_edge_headers

ASSETS = sorted(PAGE.parent.iterdir())


async def test_the_page_is_served_with_the_strict_csp(client: Any) -> None:
    response = await client.get("/admin")
    assert response.status == 200
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["Content-Type"].startswith("text/html")
    assert_edge_headers(response.headers)
    html = await response.text()
    assert '<script type="module" src="/static/admin/admin.js">' in html
    for asset in ("/static/admin/admin.js", "/static/admin/admin.css"):
        served = await client.get(asset)
        assert served.status == 200, asset
        assert (await served.read()) == (PAGE.parent / Path(asset).name).read_bytes()


def test_nothing_is_loaded_from_another_origin() -> None:
    assert {p.name for p in ASSETS} == {"index.html", "admin.js", "admin.css"}
    for asset in ASSETS:
        text = asset.read_text()
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), asset.name
        imports = re.findall(r"from '([^']+)'", text)
        assert all(i.startswith("/static/") for i in imports), imports
