"""Every Python snippet of README.md and clients/python/README.md, and the README's `curl`
walk-through, run as written against a test server: each is extracted from the file, only
`localhost:8000` is replaced by the test server's address, and it runs in its own process
with what a reader would have (TOKEN and MY_ID/USER_ID in the environment, the files it
names in the working directory). A snippet that ends must exit 0; one that reads messages
forever must print what it promises without an error, and is then stopped."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.accounts import Account
from tests.support.waiting import eventually

pytestmark = pytest.mark.usefixtures("clean_tables")

ROOT = Path(__file__).resolve().parents[2]
FENCED = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def snippets(readme: str, language: str) -> list[str]:
    text = (ROOT / readme).read_text()
    return [code for lang, code in FENCED.findall(text) if lang == language]


def test_the_snippets_are_found() -> None:
    """The extraction sees what the tests below run (a renamed fence would skip one)."""
    assert len(snippets("README.md", "python")) == 1
    assert len([s for s in snippets("README.md", "bash") if "curl" in s]) == 1
    assert len(snippets("clients/python/README.md", "python")) == 3


class Snippet:
    """One snippet running in its own process; its output so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.output = ""
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, code: str, language: str, base: str, env: dict[str, str], cwd: Path
    ) -> Snippet:
        code = code.replace("localhost:8000", base)
        command = [sys.executable, "-c", code] if language == "python" else ["bash", "-c", code]
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.output += line.decode()

    async def wait_for(self, *texts: str, timeout: float = 20) -> None:
        async def printed() -> bool:
            assert self.process.returncode is None, f"the snippet ended:\n{self.output}"
            return all(text in self.output for text in texts)

        await eventually(printed, timeout=timeout)

    async def finish(self, timeout: float = 30) -> str:
        await asyncio.wait_for(self.process.wait(), timeout)
        await self._reader
        assert self.process.returncode == 0, self.output
        return self.output

    async def stop(self) -> str:
        if self.process.returncode is None:
            self.process.terminate()  # the default SIGTERM action: no traceback
            await self.process.wait()
        await self._reader
        return self.output


def _base(client: Any) -> str:
    return str(client.make_url("/")).split("://", 1)[1].rstrip("/")


async def test_the_readme_walk_through_with_curl(client: Any, worker: Any, tmp_path: Path) -> None:
    [code] = [s for s in snippets("README.md", "bash") if "curl" in s]
    snippet = await Snippet.start(code, "bash", _base(client), {}, tmp_path)
    output = (await snippet.finish(timeout=60)).replace(" ", "")
    assert '{"status":"ready"' in output, output
    assert '"email":"ann@example.org"' in output, output
    assert '"status":"succeeded","result":{"echo":{"hello":"world"}' in output, output
    assert '{"error":{' not in output, output


async def test_the_readme_message_client_snippet(
    client: Any, settings: Any, alice: Account, tmp_path: Path
) -> None:
    [code] = snippets("README.md", "python")
    env = {
        "USER_ID": str(alice.id),
        "POSTGRES_DB": settings.POSTGRES_DB,
        "REDIS_PREFIX": settings.REDIS_PREFIX,
        "AMQP_PREFIX": settings.AMQP_PREFIX,
    }
    snippet = await Snippet.start(code, "python", _base(client), env, ROOT)
    output = await snippet.finish()
    assert output.startswith("accepted "), output


def _reader(alice: Account) -> dict[str, str]:
    return {"TOKEN": alice.access_token, "MY_ID": str(alice.id)}


async def test_the_sdk_websocket_snippet(client: Any, alice: Account, tmp_path: Path) -> None:
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2000))
    (tmp_path / "video.mp4").write_bytes(os.urandom(300_000))
    code = snippets("clients/python/README.md", "python")[0]
    snippet = await Snippet.start(code, "python", _base(client), _reader(alice), tmp_path)
    try:
        await snippet.wait_for(
            "300000 / 300000",  # the upload's progress
            "/realtime/files/",  # done["url"]
            "forbidden",  # subscribing to `system` as a plain user
            "public:lobby {'text': 'hello'}",  # the publication, from messages()
            "bytes image/png image.png 2008",  # the binary message, from messages()
        )
    finally:
        output = await snippet.stop()
    assert "Traceback" not in output, output


async def test_the_sdk_sse_snippet(client: Any, alice: Account, tmp_path: Path) -> None:
    code = snippets("clients/python/README.md", "python")[1]
    snippet = await Snippet.start(code, "python", _base(client), _reader(alice), tmp_path)
    try:
        await snippet.wait_for("connected")
        await client.post(
            "/realtime/broadcast",
            json={"channel": "public:news", "data": {"headline": "hi"}},
            headers=alice.headers,
        )
    finally:
        output = await snippet.stop()
    assert "Traceback" not in output, output


async def test_the_sdk_notification_snippet(
    client: Any, admin: Account, alice: Account, worker: Any, tmp_path: Path
) -> None:
    code = snippets("clients/python/README.md", "python")[2]
    snippet = await Snippet.start(code, "python", _base(client), _reader(alice), tmp_path)
    try:

        async def delivered() -> bool:
            response = await client.post(
                "/messaging/user-notification",
                json={"user_id": alice.id, "message": "Your order is ready"},
                headers=admin.headers,
            )
            assert response.status == 202, await response.text()
            await asyncio.sleep(0.5)
            return "info Your order is ready Your order is ready" in snippet.output

        await eventually(delivered, timeout=20)  # resent until the snippet has subscribed
    finally:
        output = await snippet.stop()
    assert "Traceback" not in output, output
