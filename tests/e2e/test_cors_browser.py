"""CORS in a real browser: a page served from a second origin (a tiny aiohttp app on another
port) calls the API with fetch() and an Authorization header, posts JSON and reads the
answer's Location, reads an error envelope and its X-Request-ID, opens an EventSource and a
WebSocket with tickets. From an origin listed in CORS_ALLOWED_ORIGINS all of it works;
from another, Chromium refuses (the page's own JS reports what it could and could not do)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from server.app import create_app
from server.auth.service import AuthService
from server.kernel.settings import Settings
from tests.support.accounts import Account, create_account, log_in
from tests.support.browser import chromium

pytestmark = pytest.mark.e2e

# Each step reports what the page saw; a step the browser refuses reports `refused`.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>another origin</title></head><body>
<script>
const refused = (error) => ({refused: String(error)});

async function me(api, token) {
  try {
    const response = await fetch(`${api}/users/me`, {headers: {Authorization: `Bearer ${token}`}});
    return {status: response.status, id: (await response.json()).id};
  } catch (error) { return refused(error); }
}

async function readError(api) {
  try {
    const response = await fetch(`${api}/users/me`);
    const body = await response.json();
    return {status: response.status, code: body.error.code,
            requestId: response.headers.get('X-Request-ID') === body.error.request_id};
  } catch (error) { return refused(error); }
}

async function task(api, token) {
  try {
    const response = await fetch(`${api}/tasks/example`, {
      method: 'POST',
      headers: {Authorization: `Bearer ${token}`, 'Content-Type': 'application/json'},
      body: JSON.stringify({seconds: 0, payload: 'from another origin'}),
    });
    const location = response.headers.get('Location') || '';
    return {status: response.status, location: location.startsWith('/tasks/')};
  } catch (error) { return refused(error); }
}

async function ticket(api, token) {
  try {
    const response = await fetch(`${api}/auth/ws-ticket`, {
      method: 'POST', headers: {Authorization: `Bearer ${token}`},
    });
    return {status: response.status, ticket: Boolean((await response.json()).ticket)};
  } catch (error) { return refused(error); }
}

function events(api, ticket, channel) {
  return new Promise((resolve) => {
    const source = new EventSource(`${api}/realtime/events?channels=${channel}&ticket=${ticket}`);
    const done = (result) => { source.close(); resolve(result); };
    source.addEventListener('connected', (e) => done({user: JSON.parse(e.data).user_id}));
    source.onerror = () => done({refused: 'EventSource error'});
    setTimeout(() => done({refused: 'timeout'}), 5000);
  });
}

function socket(api, ticket) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${api.replace('http', 'ws')}/realtime/ws?ticket=${ticket}`);
    ws.onmessage = (e) => { ws.close(); resolve({type: JSON.parse(e.data).type}); };
    ws.onclose = (e) => resolve({refused: `closed ${e.code}`});
    setTimeout(() => resolve({refused: 'timeout'}), 5000);
  });
}

async function run(api, token, sseTicket, wsTicket, channel) {
  return {
    me: await me(api, token),
    error: await readError(api),
    task: await task(api, token),
    ticket: await ticket(api, token),
    events: await events(api, sseTicket, channel),
    socket: await socket(api, wsTicket),
  };
}
</script></body></html>
"""


async def page_server(aiohttp_server: Any) -> str:
    """A second origin: a tiny app that serves the page above; its origin."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


async def new_ticket(api: Any, account: Account) -> str:
    response = await api.post("/auth/ws-ticket", headers=account.headers)
    assert response.status == 200, await response.text()
    return str((await response.json())["ticket"])


async def run_page(origin: str, api: Any, account: Account) -> dict[str, Any]:
    base = str(api.make_url("")).rstrip("/")
    tickets = [await new_ticket(api, account), await new_ticket(api, account)]
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{origin}/")
        result: dict[str, Any] = await page.evaluate(
            "(args) => run(...args)",
            [base, account.access_token, *tickets, "public:cors-page"],
        )
        await page.close()
    return result


async def test_a_page_of_an_allowed_origin_works_and_another_is_refused(
    aiohttp_server: Any, aiohttp_client: Any, settings: Settings, db: Any, auth_service: AuthService
) -> None:
    allowed = await page_server(aiohttp_server)
    other = await page_server(aiohttp_server)  # same host, another port: another origin
    api = await aiohttp_client(
        create_app(settings.model_copy(update={"CORS_ALLOWED_ORIGINS": allowed}))
    )
    account = await log_in(api, await create_account(db, auth_service))

    works = await run_page(allowed, api, account)
    assert works == {
        "me": {"status": 200, "id": account.id},
        "error": {"status": 401, "code": "unauthorized", "requestId": True},
        "task": {"status": 202, "location": True},
        "ticket": {"status": 200, "ticket": True},
        "events": {"user": account.id},
        "socket": {"type": "connected"},
    }, works

    blocked = await run_page(other, api, account)
    assert set(blocked) == set(works)
    assert all("refused" in step for step in blocked.values()), blocked
