"""The live dashboard channel: nodes publish snapshots to `admin:dashboard` only while
someone is subscribed, and a snapshot shows what that node has connected."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from handlers.admin_live import SNAPSHOT_INTERVAL, watched
from handlers.admin_notices import DASHBOARD_CHANNEL
from server.hub.hub import hub_key
from tests.integration.test_realtime_channels import subscribe
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account
from tests.support.waiting import eventually


async def test_snapshots_flow_only_while_someone_watches(
    client: Any, app: web.Application, admin: Account
) -> None:
    hub = app[hub_key]
    bus_channel = hub.publisher.history.bus_channel(DASHBOARD_CHANNEL)
    assert not await watched(hub.redis, bus_channel)
    ws = await connect(client, admin)
    await subscribe(ws, DASHBOARD_CHANNEL)
    assert await watched(hub.redis, bus_channel)

    frame = await next_of(ws, "publication", timeout=SNAPSHOT_INTERVAL * 3)
    snapshot = frame["data"]
    assert snapshot["kind"] == "snapshot" and snapshot["node"] == hub.node_id
    overview = snapshot["overview"]
    [mine] = [u for u in overview["this_node"]["users"] if u["user_id"] == admin.id]
    assert mine["transports"] == {"ws": 1}
    assert {"name": DASHBOARD_CHANNEL, "subscribers": 1} in overview["this_node"]["channels"]
    assert "queues" in overview["messaging"]

    await ws.send_json({"type": "unsubscribe", "channel": DASHBOARD_CHANNEL})

    async def nobody() -> bool | None:
        return True if not await watched(hub.redis, bus_channel) else None

    assert await eventually(nobody, timeout=5, interval=0.1)
    await ws.close()


async def test_the_overview_lists_this_nodes_recent_errors(client: Any, admin: Account) -> None:
    logging.getLogger("tests.admin").error("the payment service said %s", "no")
    logging.getLogger("tests.admin").warning("only a warning")
    response = await client.get("/admin/api/overview", headers=admin.headers)
    assert response.status == 200, await response.text()
    this_node = (await response.json())["this_node"]
    latest = this_node["recent_errors"][0]
    assert latest["message"] == "the payment service said no"
    assert latest["logger"] == "tests.admin" and latest["level"] == "ERROR"
    assert all(r["level"] != "WARNING" for r in this_node["recent_errors"])
    assert isinstance(this_node["relayed"], int)
