"""One server-side aiortc peer. The server always answers (aiortc has no rollback, so it is
never the offering side in a glare); renegotiation is a new offer from the client.

What it does with what the client sends:
- a data channel labelled `echo` sends every message back unchanged;
- a data channel labelled with a hub channel name is bridged to it (bridge.py);
- audio and video come back on the same transceivers (echo, through MediaRelay), are
  recorded when the room says so (MediaRecorder, WebM), and extra receive-only transceivers
  in the client's offer are filled with other members' tracks (a small-room relay: aiortc
  re-encodes every forwarded track, it is not an SFU).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSctpTransport,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRecorder, MediaRelay
from aiortc.sdp import candidate_from_sdp

from server.hub.hub import Hub
from server.kernel.principal import Principal
from server.kernel.settings import Settings
from signaling.bridge import Bridge
from storage.db import Row

log = logging.getLogger(__name__)


def has_media(sdp: str) -> bool:
    return any(line.startswith(("m=audio", "m=video")) for line in sdp.splitlines())


class ServerPeer:
    def __init__(
        self,
        *,
        owner: Principal,
        room: Row | None,
        client_id: str | None,
        configuration: RTCConfiguration,
        relay: MediaRelay,
        hub: Hub,
        settings: Settings,
        room_tracks: Callable[[], list[MediaStreamTrack]],
        on_closed: Callable[[ServerPeer], Awaitable[None]],
        recording_path: Path | None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.owner = owner
        self.room = room
        self.client_id = client_id  # the signaling connection, or None for HTTP offers
        self.pc = RTCPeerConnection(configuration=configuration)
        self.relay = relay
        self.hub = hub
        self.settings = settings
        self.created_at = time.time()
        self.connected_at: float | None = None
        self.media = False
        self.incoming: list[MediaStreamTrack] = []
        self.bridges: list[Bridge] = []
        self.echoes = 0
        self.recording_path = recording_path
        self.recorder: MediaRecorder | None = None
        self._room_tracks = room_tracks
        self._on_closed = on_closed
        self._closing: asyncio.Future[None] | None = None
        self._watched_association: RTCSctpTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    @property
    def state(self) -> str:
        return str(self.pc.connectionState)

    # -- negotiation -------------------------------------------------------------------------

    async def answer(self, sdp: str) -> str:
        """Apply the client's offer and return the answer (with every local candidate:
        aiortc gathers them before setLocalDescription returns)."""
        self.media = self.media or has_media(sdp)
        if self.recording_path is not None and self.media and self.recorder is None:
            self.recording_path.parent.mkdir(parents=True, exist_ok=True)
            self.recorder = MediaRecorder(str(self.recording_path), format="webm")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        self._watch_association()
        self._fill_relay_transceivers()
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        if self.recorder is not None and self.incoming:
            await self.recorder.start()
        return str(self.pc.localDescription.sdp)

    async def add_candidate(self, candidate: dict[str, Any] | None) -> None:
        if candidate is None or not candidate.get("candidate"):
            return  # end of candidates: nothing to do for aiortc
        text = str(candidate["candidate"]).removeprefix("candidate:")
        parsed = candidate_from_sdp(text)
        parsed.sdpMid = candidate.get("sdpMid")
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
        await self.pc.addIceCandidate(parsed)

    def _on_track(self, track: MediaStreamTrack) -> None:
        """Echo the track back on its own transceiver, and record it if asked."""
        self.incoming.append(track)
        # Video unbuffered: aiortc's relay would otherwise queue every frame an overloaded
        # encoder has not taken, without bound (GiBs in a minute); audio keeps its buffer.
        self.pc.addTrack(self.relay.subscribe(track, buffered=track.kind != "video"))
        self.echoes += 1
        if self.recorder is not None:
            self.recorder.addTrack(self.relay.subscribe(track))

    def _fill_relay_transceivers(self) -> None:
        """Receive-only transceivers the client added get other members' tracks."""
        others = list(self._room_tracks())
        for transceiver in self.pc.getTransceivers():
            sending: MediaStreamTrack | None = getattr(transceiver.sender, "track", None)
            if sending is not None or not others:
                continue
            for index, track in enumerate(others):
                if track.kind == transceiver.kind:
                    transceiver.sender.replaceTrack(
                        self.relay.subscribe(track, buffered=track.kind != "video")
                    )
                    transceiver.direction = (
                        "sendonly" if transceiver.direction == "recvonly" else transceiver.direction
                    )
                    others.pop(index)
                    break

    # -- data channels -----------------------------------------------------------------------

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label == "echo":
            channel.on("message", lambda message: channel.send(message))
            return
        bridge = Bridge(self.hub, self.owner, channel, self.settings)
        self.bridges.append(bridge)
        task = asyncio.ensure_future(bridge.open())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_retrieve)

    # -- lifecycle ---------------------------------------------------------------------------

    async def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and self.connected_at is None:
            self.connected_at = time.time()
        if state in ("failed", "closed"):
            await self.close()

    def _watch_association(self) -> None:
        """Close when the SCTP association ends (the client sent ABORT or SHUTDOWN: its peer
        connection closed), not when ICE consent expires ~30 s later. That is all
        libdatachannel and werift send on close (no DTLS close_notify, on which aiortc
        closes by itself). aiortc tells only the data channels still open, so a client that
        closed its channels first would go unnoticed: watch the association itself.
        A client closing some channels leaves the association up: nothing happens then."""
        sctp = self.pc.sctp
        if sctp is None or sctp is self._watched_association:
            return  # no data channels negotiated, or watched since an earlier offer
        self._watched_association = sctp
        # PRIVATE-API aiortc 1.16: every association state change goes through
        # RTCSctpTransport._set_state, and it emits no event (only data channels get one).
        set_state = sctp._set_state

        def set_state_and_watch(state: RTCSctpTransport.State) -> None:
            set_state(state)
            if sctp.state == "closed" and self._closing is None:
                self._closing = asyncio.ensure_future(self._close())
                self._closing.add_done_callback(_log_close_failure)

        sctp._set_state = set_state_and_watch  # type: ignore[method-assign]

    async def close(self) -> None:
        """Close once. Another call meanwhile (the state change closing causes, a shutdown
        racing a disconnect) waits until the first has finished, recording stored included,
        so that nothing the close needs (the database pool) is closed under it."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        elif self._closing is asyncio.current_task():
            return
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for bridge in self.bridges:
            await bridge.close()
        if self.recorder is not None:
            with contextlib.suppress(Exception):
                await self.recorder.stop()
        with contextlib.suppress(Exception):
            await self.pc.close()
        await self._on_closed(self)

    def data_channel_bytes(self) -> tuple[int, int]:
        """Bytes sent and received on this peer's bridged data channels."""
        sent = sum(bridge.connection.bytes_sent for bridge in self.bridges)
        return sent, sum(bridge.bytes_received for bridge in self.bridges)

    async def stats(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "peer_id": self.id,
            "user_id": self.owner.user_id,
            "room": str(self.room["id"]) if self.room else None,
            "client_id": self.client_id,
            "state": self.state,
            "media": self.media,
            "data_channels": [bridge.name for bridge in self.bridges],
            "created_at": self.created_at,
            "seconds_to_connect": None
            if self.connected_at is None
            else round(self.connected_at - self.created_at, 3),
            "recording": self.recorder is not None,
        }
        with contextlib.suppress(Exception):
            stats = await self.pc.getStats()
            # getStats() covers RTP senders and receivers only: add the data channels' DTLS
            # transport, and count transports (RTP streams' bytes are in them already).
            # PRIVATE-API aiortc 1.16: RTCDtlsTransport._get_stats (no public stats for it).
            if self.pc.sctp is not None:
                stats.update(self.pc.sctp.transport._get_stats())
            transports = [s for s in stats.values() if s.type == "transport"]
            report["bytes_sent"] = sum(getattr(s, "bytesSent", 0) or 0 for s in transports)
            report["bytes_received"] = sum(getattr(s, "bytesReceived", 0) or 0 for s in transports)
        return report


def _retrieve(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("data channel bridge failed: %r", task.exception())


def _log_close_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("closing a peer failed: %r", task.exception())
