"""GET /metrics: the WebRTC families follow a real peer. A server peer connected over
signaling is counted by state; what a bridged data channel carries moves the data channel
bytes both ways, and the bytes stay counted after the peer is gone."""

from __future__ import annotations

from typing import Any

from signaling.peers import peers_key
from tests.integration.test_metrics_realtime import scrape, value
from tests.integration.test_webrtc_datachannels import (  # noqa: F401  (`app`: the rtc app)
    Inbox,
    app,
    connected_peer,
    unique_channel,
)
from tests.support.accounts import Account
from tests.support.rtc import wait_open
from tests.support.waiting import eventually


async def test_peers_and_data_channel_bytes(client: Any, alice: Account) -> None:
    before = await scrape(client)
    assert value(before, "realtime_webrtc_peers", state="connected") == 0
    assert value(before, "realtime_webrtc_datachannel_bytes_total", direction="received") == 0
    name = unique_channel()
    pc, signaling, [channel] = await connected_peer(client, alice, name)
    inbox = Inbox(channel)
    await wait_open(channel)
    message = '{"n": "' + "x" * 1000 + '"}'
    channel.send(message)
    await inbox.wait_for(1)  # its own publication comes back down the channel

    async def moved() -> dict[str, float]:
        samples = await scrape(client)
        sent = value(samples, "realtime_webrtc_datachannel_bytes_total", direction="sent")
        received = value(samples, "realtime_webrtc_datachannel_bytes_total", direction="received")
        connected = value(samples, "realtime_webrtc_peers", state="connected")
        done = sent > 1000 and received == len(message) and connected == 1
        return {"sent": sent, "received": received} if done else {}

    during = await eventually(moved)
    assert value(await scrape(client), "realtime_connections", transport="webrtc") == 1
    await pc.close()
    await signaling.close()

    async def gone() -> bool:
        return not client.app[peers_key].peers

    await eventually(gone)
    after = await scrape(client)
    assert value(after, "realtime_webrtc_peers", state="connected") == 0
    for direction in ("sent", "received"):
        total = value(after, "realtime_webrtc_datachannel_bytes_total", direction=direction)
        assert total == during[direction]
