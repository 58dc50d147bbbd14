"""Subscription tokens: a JWT from the application grants one user one channel of a
namespace with `token: true` (and publishing there if it says so), over WebSocket and
event streams; expired, forged, wrong-channel and wrong-user tokens are refused with their
own codes, and so is every token while the feature is off."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import orjson
import pytest

from server.auth.subscription_tokens import issue
from server.hub.binary import chunk_frame
from tests.integration.test_realtime_channels import custom_client, error_for, publish, subscribe
from tests.integration.test_realtime_sse import read_events
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account

KEY = "subscription-token-key-for-tests-0123456789"
NAMESPACES = orjson.dumps(
    {"docs": {"subscribe": "nobody", "publish": "nobody", "token": True}}
).decode()


@pytest.fixture
async def tokens_client(aiohttp_client: Any, settings: Any) -> Any:
    return await custom_client(
        aiohttp_client, settings, SUBSCRIPTION_TOKEN_KEY=KEY, CHANNEL_NAMESPACES=NAMESPACES
    )


def doc_channel() -> str:
    return f"docs:report-{uuid.uuid4().hex[:8]}"


def token_for(account: Account, channel: str, *, ttl: int = 60, **claims: Any) -> str:
    return issue(
        KEY, channel=channel, user_id=account.id, expires_at=int(time.time()) + ttl, **claims
    )


async def test_a_valid_token_grants_subscribe_and_only_what_it_says(
    tokens_client: Any, alice: Account, bob: Account
) -> None:
    channel = doc_channel()
    reader = await connect(tokens_client, alice)
    error = await error_for(reader, {"type": "subscribe", "channel": channel})
    assert error["code"] == "forbidden"  # without a token the namespace says nobody
    await subscribe(reader, channel, token=token_for(alice, channel))
    error = await error_for(reader, {"type": "publish", "channel": channel, "data": 1})
    assert error["code"] == "forbidden"  # the token did not say `publish`

    writer = await connect(tokens_client, bob)
    await subscribe(writer, channel, token=token_for(bob, channel, publish=True))
    await publish(writer, channel, {"by": "token"})
    frame = await reader.receive_json(timeout=5)
    assert (frame["type"], frame["data"]) == ("publication", {"by": "token"})
    # exactly that channel: the same token opens no other
    other = doc_channel()
    error = await error_for(
        writer, {"type": "subscribe", "channel": other, "token": token_for(bob, channel)}
    )
    assert error["code"] == "token_wrong_channel"
    await reader.close()
    await writer.close()


def forged(account: Account, channel: str) -> str:
    claims = {"sub": str(account.id), "channel": channel, "exp": int(time.time()) + 60}
    return jwt.encode(claims, "another-key-another-key-another-key", algorithm="HS256")


def unsigned(account: Account, channel: str) -> str:
    claims = {"sub": str(account.id), "channel": channel, "exp": int(time.time()) + 60}
    return jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]


def with_claims(account: Account, channel: str, **claims: Any) -> str:
    base = {"sub": str(account.id), "channel": channel, "exp": int(time.time()) + 60}
    return jwt.encode({**base, **claims}, KEY, algorithm="HS256")


def without_expiry(account: Account, channel: str) -> str:
    return jwt.encode({"sub": str(account.id), "channel": channel}, KEY, algorithm="HS256")


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda a, b, c: token_for(a, c, ttl=-60), "token_expired"),
        (lambda a, b, c: forged(a, c), "token_invalid"),
        (lambda a, b, c: unsigned(a, c), "token_invalid"),
        (lambda a, b, c: without_expiry(a, c), "token_invalid"),
        (lambda a, b, c: token_for(a, doc_channel()), "token_wrong_channel"),
        (lambda a, b, c: token_for(b, c), "token_wrong_user"),
        (lambda a, b, c: with_claims(a, c, publish="yes"), "token_invalid"),
        (lambda a, b, c: "not.a.jwt", "token_invalid"),
        (lambda a, b, c: "garbage", "token_invalid"),
    ],
    ids=[
        "expired",
        "forged",
        "alg-none",
        "no-exp",
        "wrong-channel",
        "wrong-user",
        "bad-claim",
        "three-parts",
        "garbage",
    ],
)
async def test_bad_tokens_are_refused_with_their_code(
    tokens_client: Any, alice: Account, bob: Account, make: Any, code: str
) -> None:
    channel = doc_channel()
    token = make(alice, bob, channel)
    ws = await connect(tokens_client, alice)
    error = await error_for(ws, {"type": "subscribe", "channel": channel, "token": token, "id": 3})
    assert (error["code"], error["ref"]) == (code, 3), error
    await ws.send_json({"type": "ping", "id": "alive"})
    assert (await ws.receive_json(timeout=5))["id"] == "alive"
    await ws.close()


async def test_tokens_are_refused_while_the_feature_is_off(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    off = await custom_client(aiohttp_client, settings, CHANNEL_NAMESPACES=NAMESPACES)
    channel = doc_channel()
    ws = await connect(off, alice)
    error = await error_for(
        ws, {"type": "subscribe", "channel": channel, "token": token_for(alice, channel)}
    )
    assert error["code"] == "token_disabled"
    await ws.close()


async def test_namespaces_without_tokens_refuse_them(tokens_client: Any, alice: Account) -> None:
    ws = await connect(tokens_client, alice)
    channel = "public:t-tokens"
    error = await error_for(
        ws, {"type": "subscribe", "channel": channel, "token": token_for(alice, channel)}
    )
    assert error["code"] == "token_not_accepted"
    await ws.close()


async def test_event_streams_take_tokens_from_a_header_or_the_query(
    tokens_client: Any, alice: Account
) -> None:
    channel, second = doc_channel(), doc_channel()
    url = f"/realtime/events?channels={channel},{second}"
    refused = await tokens_client.get(url, headers=alice.headers)
    assert refused.status == 403
    header = f"{token_for(alice, channel)}, {token_for(alice, second)}"
    stream = await tokens_client.get(url, headers={**alice.headers, "X-Subscription-Token": header})
    assert stream.status == 200, await stream.text()
    [connected] = await read_events(stream, 1)
    assert connected["event"] == "connected"
    stream.close()

    query = {"channels": channel, "token": token_for(alice, channel)}
    stream = await tokens_client.get("/realtime/events", params=query, headers=alice.headers)
    assert stream.status == 200
    stream.close()

    expired = {"channels": channel, "token": token_for(alice, channel, ttl=-60)}
    response = await tokens_client.get("/realtime/events", params=expired, headers=alice.headers)
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "token_expired"
    for garbage in ("garbage", token_for(alice, doc_channel())):
        params = {"channels": channel, "token": garbage}
        response = await tokens_client.get("/realtime/events", params=params, headers=alice.headers)
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "bad_token"


async def test_a_token_opens_the_files_announced_on_its_channel(
    tokens_client: Any, alice: Account, bob: Account
) -> None:
    channel = doc_channel()
    writer = await connect(tokens_client, alice)
    await subscribe(writer, channel, token=token_for(alice, channel, publish=True))
    data = b"the report"
    await writer.send_json(
        {"type": "file.begin", "name": "r.txt", "size": len(data), "channel": channel, "id": 1}
    )
    upload_id = (await next_of(writer, "file.ready"))["upload_id"]
    await writer.send_bytes(chunk_frame(uuid.UUID(upload_id), 0, data))
    await writer.send_json({"type": "file.end", "upload_id": upload_id, "id": 2})
    url = (await next_of(writer, "file.done"))["url"]
    assert (await client_get(tokens_client, url, bob)).status == 404  # no token: not bob's
    other = token_for(bob, doc_channel())
    assert (await client_get(tokens_client, url, bob, other)).status == 404
    download = await client_get(tokens_client, url, bob, token_for(bob, channel))
    assert download.status == 200 and await download.read() == data
    await writer.close()


async def client_get(client: Any, url: str, account: Account, token: str | None = None) -> Any:
    headers = dict(account.headers)
    if token is not None:
        headers["X-Subscription-Token"] = token
    return await client.get(url, headers=headers)
