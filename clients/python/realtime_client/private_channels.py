"""Private channels over REST (/realtime/private-channels): create one (you own it),
list yours, manage its members (owner and admins), delete it. Members subscribe to
`private:<name>` as to any channel; a member removed gets an `unsubscribed` frame with
`code: "removed"` and receives nothing more from it.

    async with PrivateChannels("http://localhost:8000", token=access_token) as channels:
        channel = (await channels.create("project-42"))["channel"]  # "private:project-42"
        await channels.add_member("project-42", user_id=7)
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

from realtime_client._auth import Credential, credentials, http_error

PATH = "/realtime/private-channels"


def base_url(url: str) -> str:
    """The server's http(s) root from any of its URLs (ws:// and wss:// included)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", ""))


class PrivateChannels:
    """The REST calls of private channels; errors are `RealtimeError`s with the server's
    code (`channel_exists`, `unknown_channel`, `not_owner`, `unknown_user`, ...) and the
    HTTP status as `ref`."""

    def __init__(
        self,
        url: str,
        token: Credential = None,
        api_key: Credential = None,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = base_url(url) + PATH
        self._credentials = (token, api_key)
        self._session = session
        self._own_session = session is None
        self._timeout = timeout

    async def __aenter__(self) -> PrivateChannels:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def create(self, name: str) -> dict[str, Any]:
        """`{"channel": "private:<name>", "name", "owner_id", "created_at", "role"}`."""
        return dict(await self._call("POST", "", {"name": name}))

    async def list(self) -> list[dict[str, Any]]:
        """The channels you are a member of (admins: all), each with your `role`."""
        return list(await self._call("GET", ""))

    async def delete(self, name: str) -> None:
        await self._call("DELETE", f"/{quote(name)}")

    async def members(self, name: str) -> dict[str, Any]:
        """`{"channel", "owner_id", "members": [{"user_id", "role", "added_at"}]}`."""
        return dict(await self._call("GET", f"/{quote(name)}/members"))

    async def add_member(self, name: str, user_id: int) -> dict[str, Any]:
        return dict(await self._call("PUT", f"/{quote(name)}/members/{int(user_id)}"))

    async def remove_member(self, name: str, user_id: int) -> None:
        """Their live subscriptions to the channel end at once, on every server node."""
        await self._call("DELETE", f"/{quote(name)}/members/{int(user_id)}")

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers, _ = await credentials(*self._credentials, None)
        async with self._session.request(
            method,
            self.url + path,
            json=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise http_error(response.status, text)
        return json.loads(text) if text else None
