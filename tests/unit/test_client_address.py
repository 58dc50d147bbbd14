"""Whose address a request comes from: X-Forwarded-For is believed only from TRUSTED_PROXIES,
and only as far as the trusted proxies go (server/kernel/addresses.py)."""

from __future__ import annotations

from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from server.kernel.addresses import client_address, parse_networks
from server.kernel.settings import Settings


def address(peer: str, forwarded: list[str], trusted: str) -> str:
    headers = CIMultiDict([("X-Forwarded-For", value) for value in forwarded])
    transport = mock.Mock()
    transport.get_extra_info.return_value = (peer, 40000)
    request = make_mocked_request("GET", "/", headers=headers, transport=transport)
    return client_address(request, parse_networks(trusted))


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.9", ["10.0.0.1"], "", "203.0.113.9"),  # no proxies: never believed
        ("203.0.113.9", ["10.0.0.1"], "127.0.0.1", "203.0.113.9"),  # not from a proxy
        ("127.0.0.1", ["198.51.100.7"], "127.0.0.1", "198.51.100.7"),
        # nginx appends the peer to what the client sent: the client's own claim is ignored
        ("127.0.0.1", ["1.2.3.4, 198.51.100.7"], "127.0.0.1", "198.51.100.7"),
        # two proxies of ours (a balancer, then nginx): the first hop that is not ours
        ("10.0.0.2", ["1.2.3.4, 198.51.100.7, 10.0.0.3"], "10.0.0.0/8", "198.51.100.7"),
        ("10.0.0.2", ["1.2.3.4", "198.51.100.7"], "10.0.0.0/8", "198.51.100.7"),  # two headers
        ("127.0.0.1", [], "127.0.0.1", "127.0.0.1"),  # a proxy's own request
        ("127.0.0.1", ["garbage, 198.51.100.7"], "127.0.0.1", "198.51.100.7"),
        ("::1", ["2001:db8::5"], "::1", "2001:db8::5"),
    ],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    peer: str, forwarded: list[str], trusted: str, expected: str
) -> None:
    assert address(peer, forwarded, trusted) == expected


@pytest.mark.parametrize("value", ["10.0.0.0/33", "nginx", "127.0.0.1,,300.1.1.1"])
def test_a_bad_proxy_list_is_refused_naming_the_entry(value: str) -> None:
    with pytest.raises(ValueError, match="is not an IP address or network"):
        Settings(TRUSTED_PROXIES=value, _env_file=None)  # type: ignore[call-arg]
