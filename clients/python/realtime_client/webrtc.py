"""WebRTC helpers (no WebRTC stack needed: bring aiortc or another). STUN/TURN servers for
peer connections: GET /realtime/webrtc/ice-servers on the server the socket talks to, with a
TURN credential valid for the server's TURN_TTL seconds (fetch one per peer connection).
With aiortc:

    servers = await client.ice_servers()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[RTCIceServer(**s) for s in servers]))

`offer_to_server` answers an offer with a new server peer (POST /realtime/webrtc/offer), and
`BridgeCursors` keeps each bridged data channel's cursor so that a new peer connection, after
a network change, resumes the channels without losing a publication.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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


OFFER_PATH = "/realtime/webrtc/offer"


def offer_url(socket_url: str) -> str:
    """POST /realtime/webrtc/offer on the same host as a ws:// or wss:// URL."""
    return ice_servers_url(socket_url).removesuffix(PATH) + OFFER_PATH


async def offer_to_server(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    sdp: str,
    timeout: float,
    room: str | None = None,
) -> dict[str, Any]:
    """The server peer's answer `{"sdp", "type": "answer", "peer_id"}` to an offer (a new
    server peer each time: this is how a client comes back after its network changed)."""
    body: dict[str, Any] = {"sdp": sdp, "type": "offer"}
    if room is not None:
        body["room"] = room
    async with session.post(
        url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as response:
        text = await response.text()
        if response.status != 201:
            raise http_error(response.status, text)
    return dict(json.loads(text))


class BridgeCursors:
    """Where each bridged data channel (labelled with a hub channel, e.g. `public:lobby`)
    stands, so that a new peer connection resumes it (docs/PROTOCOL.md, WebRTC, resume).
    Create the data channels with `open()` (or with `protocol=cursors.protocol(name)`, and
    pass every message through `observe()`): on the first peer connection the server says
    where the channel stands (`subscribed`); after a network change, a new peer connection
    whose channels are opened the same way gets what was published meanwhile first, then
    live publications, each once and in order (`observe` also drops one seen already, e.g.
    from the old connection still draining). If the history no longer reaches back, the
    `subscribed` frame says `recovered: false`: reload what you derive from the channel.

        cursors = BridgeCursors()

        async def connect() -> RTCPeerConnection:  # aiortc
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[...]))
            cursors.open(pc, "public:lobby", on_frame)  # from the last cursor, if any
            await pc.setLocalDescription(await pc.createOffer())
            answer = await offer_to_server(session, offer_url(ws_url), auth_headers,
                                           pc.localDescription.sdp, timeout=10)
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            return pc

        pc = await connect()
        ...  # the network changed (pc.connectionState "failed", a new address):
        await pc.close()
        pc = await connect()  # what was published meanwhile arrives first
    """

    def __init__(self) -> None:
        self.cursors: dict[str, str] = {}  # channel -> `<epoch>:<offset>`

    def protocol(self, channel: str) -> str:
        """The data channel `protocol` asking for the resume protocol, from the last cursor
        when there is one."""
        cursor = self.cursors.get(channel)
        return json.dumps({"since": cursor} if cursor else {})

    def observe(self, channel: str, message: str | bytes) -> dict[str, Any] | None:
        """A message of the bridged data channel `channel` as a frame, its cursor kept; None
        for a publication given already (and for what is not a JSON object)."""
        if isinstance(message, bytes):
            return None
        try:
            frame = json.loads(message)
        except ValueError:
            return None
        if not isinstance(frame, dict):
            return None
        kind = frame.get("type")
        cursor = frame.get("cursor")
        if not isinstance(cursor, str):
            return frame
        if kind == "publication":
            if self._seen(channel, cursor):
                return None
            self.cursors[channel] = cursor
        elif kind == "gap" or (kind == "subscribed" and not frame.get("replayed")):
            # `subscribed` with publications to follow: they move the cursor, one by one
            self.cursors[channel] = cursor
        return frame

    def _seen(self, channel: str, cursor: str) -> bool:
        epoch, _, offset = cursor.partition(":")
        last_epoch, _, last_offset = self.cursors.get(channel, "").partition(":")
        return (epoch == last_epoch and offset.isdigit() and last_offset.isdigit()) and int(
            offset
        ) <= int(last_offset)

    def open(
        self, pc: Any, channel: str, on_frame: Callable[[dict[str, Any]], None] | None = None
    ) -> Any:
        """`pc.createDataChannel(channel, protocol=...)` (aiortc's RTCPeerConnection, or any
        with the same signature) resuming from the channel's cursor; every frame it delivers
        goes to `on_frame` after `observe()`."""
        data_channel = pc.createDataChannel(channel, protocol=self.protocol(channel))

        def on_message(message: str | bytes) -> None:
            frame = self.observe(channel, message)
            if frame is not None and on_frame is not None:
                on_frame(frame)

        data_channel.on("message", on_message)
        return data_channel
