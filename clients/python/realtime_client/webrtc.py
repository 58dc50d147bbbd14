"""STUN/TURN servers for WebRTC peer connections: GET /realtime/webrtc/ice-servers on the
server the socket talks to, with a TURN credential valid for the server's TURN_TTL seconds
(fetch one per peer connection). With aiortc:

    servers = await client.ice_servers()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[RTCIceServer(**s) for s in servers]))
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from realtime_client._auth import http_error

PATH = "/realtime/webrtc/ice-servers"


def ice_servers_url(socket_url: str) -> str:
    """The route on the same host as a ws:// or wss:// (or http(s)://) URL."""
    parts = urlsplit(socket_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, PATH, "", ""))


async def fetch_ice_servers(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], timeout: float
) -> list[dict[str, Any]]:
    """`[{"urls", "username"?, "credential"?}]`; the server's error envelope as RealtimeError."""
    async with session.get(
        url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as response:
        body = await response.text()
        if response.status != 200:
            raise http_error(response.status, body)
    return list(json.loads(body)["ice_servers"])
