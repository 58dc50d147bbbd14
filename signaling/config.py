"""ICE configuration from settings. aiortc would use Google's STUN server by default; here
the default is no STUN/TURN at all, so peers work offline (on loopback and LANs)."""

from __future__ import annotations

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

from server.kernel.settings import Settings, ice_servers


def rtc_configuration(settings: Settings) -> RTCConfiguration:
    servers = [
        RTCIceServer(
            urls=entry["urls"], username=entry.get("username"), credential=entry.get("credential")
        )
        for entry in ice_servers(settings.ICE_SERVERS)
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
