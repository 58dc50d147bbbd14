"""An event stream resumed from beyond the history: `recovery-failed` carries an id from which
EventSource's own reconnection makes progress (live from now), instead of the same failure
again on every reconnect."""

from __future__ import annotations

from typing import Any

import orjson

from tests.integration.test_realtime_channels import custom_client, sse_events, unique
from tests.integration.test_realtime_eventsource import stream
from tests.integration.test_realtime_sse import publish
from tests.support.accounts import Account


async def resume(client: Any, account: Account, channels: list[str], last_event_id: str) -> Any:
    """An event stream asked to resume from `last_event_id`, as EventSource reconnects."""
    response = await client.get(
        "/realtime/events",
        params={"channels": ",".join(channels)},
        headers={**account.headers, "Last-Event-ID": last_event_id},
    )
    assert response.status == 200, await response.text()
    return response


def positions(event_id: str) -> dict[str, str]:
    """A composite event id, `a=<cursor>,b=<cursor>`, as {channel: cursor}."""
    return dict(part.split("=", 1) for part in event_id.split(","))


async def test_recovery_failed_has_an_id_that_resumes_live(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, HISTORY_SIZE=2)
    channel = unique()
    first = await publish(client, alice, channel, 1)
    for n in (2, 3, 4):
        last = await publish(client, alice, channel, n)  # 1 falls out of the history

    response = await resume(client, alice, [channel], first["cursor"])
    events = await sse_events(response, 3)
    assert [e["event"] for e in events] == ["connected", "recovery-failed", "close"]
    failed = events[1]
    assert failed["id"] == last["cursor"]  # the channel's position now
    assert orjson.loads(failed["data"])["cursor"] == last["cursor"]
    response.close()

    # what EventSource does next: reconnect with the last id it saw
    resumed = await stream(client, alice, [channel], **{"Last-Event-ID": failed["id"]})
    live = await publish(client, alice, channel, 5)
    [event] = await sse_events(resumed, 1)
    assert (event["event"], event["id"]) == ("publication", live["cursor"])
    assert orjson.loads(event["data"])["data"] == 5
    resumed.close()


async def test_recovery_failed_of_one_channel_keeps_the_others_resume_points(
    client: Any, alice: Account
) -> None:
    a, b = unique(), unique()
    ack_a = await publish(client, alice, a, "a1")
    ack_b = await publish(client, alice, b, "b1")
    since = f"{a}={ack_a['cursor']},{b}=deadbeef:7"  # b: an epoch the channel never had
    response = await resume(client, alice, [a, b], since)
    events = await sse_events(response, 3)
    assert [e["event"] for e in events] == ["connected", "recovery-failed", "close"]
    assert positions(events[1]["id"]) == {a: ack_a["cursor"], b: ack_b["cursor"]}
    response.close()

    missed = await publish(client, alice, a, "a2")
    resumed = await resume(client, alice, [a, b], events[1]["id"])
    replayed = await sse_events(resumed, 2)
    assert [e["event"] for e in replayed] == ["connected", "publication"]  # no recovery-failed
    assert orjson.loads(replayed[1]["data"])["data"] == "a2"
    assert positions(replayed[1]["id"]) == {a: missed["cursor"], b: ack_b["cursor"]}
    resumed.close()
