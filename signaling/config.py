"""ICE configuration from settings: the one list of STUN/TURN servers that clients (GET
/realtime/webrtc/ice-servers) and the server peer use, with TURN credentials derived from
TURN_SECRET. aiortc would use Google's STUN server by default; here the default is no
STUN/TURN at all, so peers work offline (on loopback and LANs)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

from server.kernel.settings import Settings, ice_servers
from server.kernel.settings_realtime import url_list

SERVER_PEER_USER = "realtime-server"  # the TURN user name of the server peers


def turn_credential(secret: str, user: str, expires_at: int) -> tuple[str, str]:
    """coturn's `use-auth-secret` scheme (the "TURN REST API"): the user name is
    `<expiry unix time>:<user>`, the password base64(HMAC-SHA1(secret, user name))."""
    username = f"{expires_at}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_server_list(
    settings: Settings, user: str, now: float | None = None
) -> list[dict[str, Any]]:
    """ICE_SERVERS (static entries, as given), then STUN_URLS, then TURN_URLS with a
    credential for `user` valid TURN_TTL seconds from `now`. The secret stays here."""
    servers = [dict(entry) for entry in ice_servers(settings.ICE_SERVERS)]
    stun = url_list(settings.STUN_URLS)
    if stun:
        servers.append({"urls": stun})
    turn = url_list(settings.TURN_URLS)
    if turn:
        expires_at = int(time.time() if now is None else now) + settings.TURN_TTL
        secret = settings.TURN_SECRET.get_secret_value()
        username, credential = turn_credential(secret, user, expires_at)
        servers.append({"urls": turn, "username": username, "credential": credential})
    return servers


def rtc_configuration(settings: Settings) -> RTCConfiguration:
    """A server peer's configuration, with fresh TURN credentials: build one per peer."""
    servers = [
        RTCIceServer(
            urls=entry["urls"], username=entry.get("username"), credential=entry.get("credential")
        )
        for entry in ice_server_list(settings, SERVER_PEER_USER)
    ]
    return RTCConfiguration(iceServers=servers)


_original_host_addresses = aioice.ice.get_host_addresses


def configure_host_addresses(settings: Settings) -> list[str]:
    """aioice gathers the machine's addresses but never loopback. It reads them through a
    module function, so that function is replaced once for the process (like the tracer
    provider, a process-wide setting): with ICE_HOST_ADDRESSES, or with the machine's own
    addresses plus 127.0.0.1 so that peers on this machine can always connect."""
    given = [a.strip() for a in settings.ICE_HOST_ADDRESSES.split(",") if a.strip()]

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if given:
            return given
        found = _original_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
        return [*found, "127.0.0.1"] if use_ipv4 and "127.0.0.1" not in found else found

    aioice.ice.get_host_addresses = host_addresses
    return host_addresses(True, False)
