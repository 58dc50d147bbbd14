"""Whose address a request comes from. `X-Forwarded-For` is believed only on a connection
from one of TRUSTED_PROXIES (otherwise anyone could pick their own address), and only as
far as those proxies go: reading its hops from the nearest, the first address that is not a
trusted proxy is the client. The request-id middleware stores the answer on the request
(`client_address_key`) for the handlers (login throttling) and the access log.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

client_address_key = web.RequestKey("client_address", str)


def parse_networks(text: str) -> tuple[Network, ...]:
    """TRUSTED_PROXIES' comma-separated addresses and networks; ValueError names a bad one."""
    networks = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(networks)


def client_address(request: web.BaseRequest, proxies: tuple[Network, ...]) -> str:
    peer = request.remote or "unknown"
    if not proxies or not _within(peer, proxies):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getall("X-Forwarded-For", [])
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _within(hop, proxies):
            return hop[:64]
    return hops[0][:64] if hops else peer


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
