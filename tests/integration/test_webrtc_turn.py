"""TURN with short-lived credentials against the real coturn: GET
/realtime/webrtc/ice-servers derives them as coturn's `use-auth-secret` expects; an aiortc
client restricted to relay candidates reaches the server peer through coturn and echoes;
the server peer allocates on the same relay with its own credentials; an expired or forged
credential is refused (coturn answers 401 and no relay candidate exists)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnection
from realtime_client import RealtimeError, WSClient

from server.app import create_app
from server.kernel.settings import ConfigError, Settings, load_settings
from signaling.config import SERVER_PEER_USER, ice_server_list, turn_credential
from tests.conftest import make_settings
from tests.integration.test_webrtc_basic import echo_round_trip
from tests.support.accounts import Account
from tests.support.coturn import Coturn, coturn
from tests.support.rtc import accept_answer, offer_sdp, wait_open
from tests.support.waiting import eventually

SECRET = "turn-secret-for-the-tests-0123456789"


@pytest.fixture
async def turn(tmp_path: Path) -> Any:
    async with coturn(tmp_path / "coturn", SECRET) as server:
        yield server


@pytest.fixture
def app(settings: Settings, turn: Coturn) -> Any:
    return create_app(
        make_settings(
            POSTGRES_DB=settings.POSTGRES_DB,
            ICE_HOST_ADDRESSES="127.0.0.1",
            STUN_URLS=turn.stun_url,  # coturn answers STUN too
            TURN_URLS=turn.url,
            TURN_SECRET=SECRET,
            TURN_TTL=600,
        )
    )


def relay_only(servers: list[dict[str, Any]]) -> RTCPeerConnection:
    """An aiortc client that gathers and uses relay candidates only."""
    ice = [RTCIceServer(**server) for server in servers]
    return RTCPeerConnection(
        RTCConfiguration(iceServers=ice, iceTransportPolicy=RTCIceTransportPolicy.RELAY)
    )


def selected_pair(pc: RTCPeerConnection) -> Any:
    """The nominated candidate pair of the peer's (bundled) ICE connection."""
    connection = pc.sctp.transport.transport._connection  # aiortc has no getStats() for it
    return connection._nominated[1]


def candidate_types(sdp: str) -> list[str]:
    return re.findall(r"^a=candidate:.* typ (\w+)", sdp, flags=re.MULTILINE)


async def test_ice_servers_give_a_coturn_credential(
    client: Any, alice: Account, turn: Coturn
) -> None:
    assert (await client.get("/realtime/webrtc/ice-servers")).status == 401
    before = int(time.time())
    response = await client.get("/realtime/webrtc/ice-servers", headers=alice.headers)
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    text = await response.text()
    assert SECRET not in text
    body = await response.json()
    stun, relay = body["ice_servers"]
    assert stun == {"urls": [turn.stun_url]}
    assert relay["urls"] == [turn.url]
    expiry, user = relay["username"].split(":")
    assert user == str(alice.id)
    assert before + 600 <= int(expiry) == body["expires_at"] <= int(time.time()) + 600
    mac = hmac.new(SECRET.encode(), relay["username"].encode(), hashlib.sha1).digest()
    assert relay["credential"] == base64.b64encode(mac).decode()


async def test_relay_only_client_reaches_the_server_peer_through_coturn(
    client: Any, alice: Account, turn: Coturn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    servers = (
        await (await client.get("/realtime/webrtc/ice-servers", headers=alice.headers)).json()
    )["ice_servers"]
    pc = relay_only(servers)
    channel = pc.createDataChannel("echo")
    sdp = await offer_sdp(pc)
    assert candidate_types(sdp) == ["relay"]  # no host candidate: nothing but the relay
    response = await client.post(
        "/realtime/webrtc/offer", json={"sdp": sdp, "type": "offer"}, headers=alice.headers
    )
    assert response.status == 201, await response.text()
    answer = (await response.json())["sdp"]
    # The server peer allocated on the same relay, with credentials of its own.
    assert "relay" in candidate_types(answer)
    await accept_answer(pc, answer)
    assert await echo_round_trip(pc, channel) == "hello server"
    pair = selected_pair(pc)
    assert pair.local_candidate.type == "relay"
    assert pair.local_candidate.port != turn.port
    # coturn saw both allocations succeed: the client's user and the server peer's.
    log = turn.log_text()
    assert re.search(rf"user <\d+:{alice.id}>: .*ALLOCATE processed, success", log), log[-3000:]
    assert re.search(rf"user <\d+:{SERVER_PEER_USER}>: .*ALLOCATE processed, success", log)
    assert SECRET not in log
    await pc.close()
    assert caplog.records  # the server and aiortc logged (at DEBUG) while connecting
    assert SECRET not in caplog.text


async def test_the_python_sdk_fetches_them(client: Any, alice: Account, turn: Coturn) -> None:
    url = str(client.make_url("/realtime/webrtc/signaling")).replace("http://", "ws://", 1)
    async with WSClient(url, token=alice.access_token) as ws:
        servers = await ws.ice_servers()
    assert [server["urls"] for server in servers] == [[turn.stun_url], [turn.url]]
    assert servers[1]["username"].endswith(f":{alice.id}")
    pc = relay_only(servers)  # what the SDK returns is aiortc's RTCIceServer fields
    channel = pc.createDataChannel("echo")
    response = await client.post(
        "/realtime/webrtc/offer",
        json={"sdp": await offer_sdp(pc), "type": "offer"},
        headers=alice.headers,
    )
    await accept_answer(pc, (await response.json())["sdp"])
    assert await echo_round_trip(pc, channel) == "hello server"
    await pc.close()
    tokens = iter([alice.access_token, "expired-meanwhile"])

    async def token() -> str:
        return next(tokens)

    async with WSClient(url, token=token) as ws:
        with pytest.raises(RealtimeError) as caught:
            await ws.ice_servers()
    assert caught.value.code == "invalid_token", caught.value


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param(
            lambda user: turn_credential(SECRET, user, int(time.time()) - 60), id="expired"
        ),
        pytest.param(
            lambda user: turn_credential("not-the-secret", user, int(time.time()) + 600),
            id="forged",
        ),
    ],
)
async def test_a_bad_credential_is_refused(
    client: Any, alice: Account, turn: Coturn, credential: Any
) -> None:
    username, password = credential(str(alice.id))
    pc = relay_only([{"urls": turn.url, "username": username, "credential": password}])
    channel = pc.createDataChannel("echo")
    sdp = await offer_sdp(pc)
    assert candidate_types(sdp) == []  # coturn refused the allocation
    assert "401" in turn.log_text() or "Unauthorized" in turn.log_text()
    response = await client.post(
        "/realtime/webrtc/offer", json={"sdp": sdp, "type": "offer"}, headers=alice.headers
    )
    assert response.status == 201, await response.text()
    await accept_answer(pc, (await response.json())["sdp"])
    # Nothing to connect from: the channel never opens (aiortc waits rather than failing).
    with pytest.raises(TimeoutError):
        await wait_open(channel, timeout=5)
    assert pc.connectionState != "connected"
    await pc.close()

    async def allocation_refused() -> bool:
        return bool(
            re.search(rf"user <{re.escape(username)}>.*(401|[Uu]nauthori)", turn.log_text())
        )

    await eventually(allocation_refused, timeout=5)


async def test_coturn_accepts_both_secrets_during_a_rotation(tmp_path: Path) -> None:
    """docs/OPERATIONS.md: list the old and the new secret in coturn, then switch."""
    async with coturn(tmp_path / "rotating", "old-secret-" + SECRET, SECRET) as server:
        for secret in ("old-secret-" + SECRET, SECRET):
            username, password = turn_credential(secret, "9", int(time.time()) + 60)
            pc = relay_only([{"urls": server.url, "username": username, "credential": password}])
            pc.createDataChannel("echo")
            assert candidate_types(await offer_sdp(pc)) == ["relay"], secret
            await pc.close()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"TURN_URLS": "turn:turn.example.org:3478"}, "TURN_URLS needs TURN_SECRET"),
        (
            {"TURN_URLS": "stun:turn.example.org", "TURN_SECRET": "s"},
            "is not a turn: or turns: URL",
        ),
        ({"STUN_URLS": "turn:turn.example.org"}, "is not a stun: or stuns: URL"),
        ({"TURN_TTL": 10}, "greater than or equal to 60"),
        (
            {
                "ENVIRONMENT": "production",
                "SECRET_KEY": "x" * 40,
                "TURN_URLS": "turn:t.example.org",
                "TURN_SECRET": "dev-only-turn-secret-change-me",
            },
            "TURN_SECRET must be 32+ random characters",
        ),
    ],
)
def test_bad_turn_settings_are_named(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **overrides)
    assert message in str(caught.value)


def test_settings_never_show_the_secret() -> None:
    settings = make_settings(TURN_URLS="turn:t.example.org", TURN_SECRET=SECRET)
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, TURN_SECRET=SECRET, TURN_TTL=1)
    assert SECRET not in str(caught.value)


def test_static_ice_servers_stay_first_and_unchanged() -> None:
    static = '[{"urls": "turn:static.example.org", "username": "u", "credential": "p"}]'
    settings = make_settings(ICE_SERVERS=static, STUN_URLS="stun:s.example.org")
    assert ice_server_list(settings, "7", now=1000) == [
        {"urls": "turn:static.example.org", "username": "u", "credential": "p"},
        {"urls": ["stun:s.example.org"]},
    ]
    settings = make_settings(TURN_URLS="turn:t.example.org", TURN_SECRET="k", TURN_TTL=60)
    assert ice_server_list(settings, "7", now=1000) == [
        {
            "urls": ["turn:t.example.org"],
            "username": "1060:7",
            "credential": turn_credential("k", "7", 1060)[1],
        }
    ]
