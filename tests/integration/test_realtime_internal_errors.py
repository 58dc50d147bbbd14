"""A bug in a message handler answers an `internal_error` frame (logged with its traceback);
the connection and the process carry on."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from aiohttp import web

from server.hub.protocol import Message, message_types_key
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account


class Explode(Message):
    type: Literal["explode"]


async def explode(session: Any, message: Explode) -> None:
    raise RuntimeError("a bug in a handler")


async def test_a_failing_handler_answers_internal_error(
    client: Any, app: web.Application, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    app[message_types_key].add(Explode, explode)  # the registry is shared, not app state
    ws = await connect(client, alice)
    await ws.send_json({"type": "explode", "id": 9})
    error = await next_of(ws, "error")
    assert error["code"] == "internal_error"
    assert error["ref"] == 9
    assert "a bug in a handler" not in error["message"]
    assert any("a bug in a handler" in (r.exc_text or "") for r in caplog.records)
    await ws.send_json({"type": "ping", "id": 1})
    assert (await next_of(ws, "pong"))["id"] == 1
    await ws.close()
