"""aiortc client peers for tests (loopback only, no STUN)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription


def client_peer() -> RTCPeerConnection:
    return RTCPeerConnection(configuration=RTCConfiguration(iceServers=[]))


async def offer_sdp(pc: RTCPeerConnection) -> str:
    """An offer with every local candidate in it (aiortc gathers before returning)."""
    await pc.setLocalDescription(await pc.createOffer())
    return str(pc.localDescription.sdp)


async def accept_answer(pc: RTCPeerConnection, sdp: str) -> None:
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))


async def wait_open(channel: Any, timeout: float = 10) -> None:
    if channel.readyState == "open":
        return
    opened = asyncio.get_running_loop().create_future()
    channel.on("open", lambda: opened.done() or opened.set_result(None))
    await asyncio.wait_for(opened, timeout)
