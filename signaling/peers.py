"""The server peers of this process: creation within limits, one per signaling connection
(renegotiation reuses it), closing on failure, leave, disconnect and shutdown, recordings
registered as downloadable files, and stats for GET /realtime/webrtc/peers."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRelay

from server.hub.hub import Hub
from server.kernel.principal import Principal
from server.kernel.realtime_errors import ProtocolError
from server.kernel.settings import Settings
from signaling.config import rtc_configuration
from signaling.peer import ServerPeer, has_media
from storage import files
from storage.db import Pool, Row, transaction

log = logging.getLogger(__name__)


def ice_ufrag(sdp: str) -> str | None:
    """The offer's ICE username fragment (its first `a=ice-ufrag:` line)."""
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line.removeprefix("a=ice-ufrag:").strip()
    return None


class PeerManager:
    def __init__(self, settings: Settings, hub: Hub, pool: Pool) -> None:
        self.settings = settings
        self.hub = hub
        self.pool = pool
        self.relay = MediaRelay()
        self.peers: dict[str, ServerPeer] = {}
        self.by_connection: dict[str, ServerPeer] = {}
        self._storing: set[ServerPeer] = set()  # closed, their recording being stored
        self.closed_traffic = [0, 0]  # bridged data channel bytes of closed peers: sent, received
        self.recordings = Path(settings.UPLOAD_DIR).resolve()

    @property
    def media_peers(self) -> int:
        return sum(1 for peer in self.peers.values() if peer.media)

    def _room_tracks(self, room: Row | None, exclude: str) -> list[MediaStreamTrack]:
        if room is None or len(self.peers) > 1000:
            return []
        tracks: list[MediaStreamTrack] = []
        for peer in self.peers.values():
            if peer.id != exclude and peer.room is not None and peer.room["id"] == room["id"]:
                tracks.extend(peer.incoming)
        return tracks

    async def offer(
        self,
        owner: Principal,
        sdp: str,
        *,
        room: Row | None,
        client_id: str | None,
        room_size: int = 0,
        ref: Any = None,
    ) -> tuple[ServerPeer, str]:
        """Answer an offer: a new peer, or renegotiation of this connection's peer."""
        if not any(line.startswith("m=") for line in sdp.splitlines()):
            # aiortc answers it, and the peer would wait for ever with nothing to connect
            raise ProtocolError("bad_sdp", "the offer has no media or data channel", ref)
        peer = self.by_connection.get(client_id) if client_id is not None else None
        remote = peer.pc.remoteDescription if peer is not None else None
        if peer is not None and remote is not None and ice_ufrag(sdp) != ice_ufrag(remote.sdp):
            # New ICE credentials: a new peer connection on the client (or an ICE restart,
            # which aiortc cannot do: docs/PROTOCOL.md, WebRTC). Answered by the old peer it
            # would never connect: the old peer goes, a new one answers.
            await peer.close()
            peer = None
        media = has_media(sdp)
        if media and room is not None and not room["media"]:
            raise ProtocolError("media_disabled", "this room carries data channels only", ref)
        if (
            media
            and room is not None
            and room_size > self.settings.WEBRTC_RELAY_MAX_MEMBERS
            and self._room_tracks(room, peer.id if peer is not None else "")  # not its own
        ):
            raise ProtocolError(
                "room_too_large_for_media", "the server relays media only in small rooms", ref
            )
        if peer is None and len(self.peers) >= self.settings.WEBRTC_MAX_PEERS:
            raise ProtocolError("too_many_peers", "this server has no room for another peer", ref)
        # A data-only peer renegotiating to add media counts as a new media peer: without
        # this it would slip past the limit and every media peer would get fewer frames.
        if (
            media
            and (peer is None or not peer.media)
            and self.media_peers >= self.settings.WEBRTC_MAX_MEDIA_PEERS
        ):
            raise ProtocolError(
                "too_many_media_peers", "this server carries no more media peers", ref
            )
        if peer is None:
            peer = self._new_peer(owner, room, client_id)
        # Counted from here, before the first await: offers arriving meanwhile see it.
        peer.media = peer.media or media
        try:
            answer = await peer.answer(sdp)
        except Exception as error:  # aiortc also raises AssertionError, IndexError, ...
            await peer.close()
            raise ProtocolError(
                "bad_sdp",
                f"the offer could not be applied: {error or type(error).__name__}"[:300],
                ref,
            ) from None
        return peer, answer

    def _new_peer(self, owner: Principal, room: Row | None, client_id: str | None) -> ServerPeer:
        holder: list[ServerPeer] = []
        recording = None
        if room is not None and room["record"]:
            recording_id = uuid.uuid4()
            recording = self.recordings / recording_id.hex[:2] / f"{recording_id}.part"
        peer = ServerPeer(
            owner=owner,
            room=room,
            client_id=client_id,
            configuration=rtc_configuration(self.settings),  # fresh TURN credentials
            relay=self.relay,
            hub=self.hub,
            settings=self.settings,
            room_tracks=lambda: self._room_tracks(room, holder[0].id if holder else ""),
            on_closed=self._forget,
            recording_path=recording,
        )
        holder.append(peer)
        self.peers[peer.id] = peer
        if client_id is not None:
            self.by_connection[client_id] = peer
        return peer

    async def _forget(self, peer: ServerPeer) -> None:
        """The peer closed: forget it, then store its recording (close_all() on shutdown
        waits for that too, through `_storing`)."""
        if self.peers.pop(peer.id, None) is not None:
            sent, received = peer.data_channel_bytes()
            self.closed_traffic[0] += sent
            self.closed_traffic[1] += received
        if peer.client_id is not None and self.by_connection.get(peer.client_id) is peer:
            del self.by_connection[peer.client_id]
        if peer.recording_path is not None and peer.recording_path.exists():
            self._storing.add(peer)
            try:
                await self._register_recording(peer)
            finally:
                self._storing.discard(peer)

    async def _register_recording(self, peer: ServerPeer) -> None:
        """The finished recording becomes a file its owner (and admins) can download."""
        path = peer.recording_path
        assert path is not None
        file_id = uuid.UUID(path.name.removesuffix(".part"))

        def finish() -> tuple[int, str]:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                while block := handle.read(1024 * 1024):
                    digest.update(block)
            size = path.stat().st_size
            path.replace(path.with_name(str(file_id)))
            return size, digest.hexdigest()

        size, sha256 = await asyncio.to_thread(finish)
        room = peer.room
        async with transaction(self.pool) as conn:
            await files.create(
                conn,
                file_id=file_id,
                owner_id=peer.owner.user_id,
                name=f"recording-{room['name'] if room else 'peer'}-{peer.id[:8]}.webm",
                mime="video/webm",
                size=size,
                expected_sha256=None,
                channel=None,
            )
            await files.complete(conn, file_id, sha256)
        log.info("recording of peer %s stored as file %s (%d bytes)", peer.id, file_id, size)

    def of_connection(self, client_id: str) -> ServerPeer | None:
        return self.by_connection.get(client_id)

    async def close_connection_peer(self, client_id: str) -> None:
        peer = self.by_connection.get(client_id)
        if peer is not None:
            await peer.close()

    async def close_all(self) -> None:
        """Close every peer and wait for every close under way, recordings stored included
        (a peer closed by its connection's shutdown may still be storing one)."""
        closing = {*self.peers.values(), *self._storing}
        await asyncio.gather(*(peer.close() for peer in closing), return_exceptions=True)

    async def stats(self) -> list[dict[str, Any]]:
        return [await peer.stats() for peer in list(self.peers.values())]


peers_key: web.AppKey[PeerManager] = web.AppKey("peers", PeerManager)
