"""A webhook receiver on 127.0.0.1 for in-process tests: answers each POST with the next status.

The e2e tests, whose server is another process, use the threaded listener of
``alert_deliveries`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any


class WebhookReceiver:
    """A tiny HTTP/1.1 server: each POST gets the next of ``statuses`` (then 200).

    It records each request's path and ``Idempotency-Key`` and queues ``(status, JSON body)``.
    """

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()
        self.paths: list[str] = []
        self.keys: list[str] = []
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode().split("\r\n")
                fields = (line.split(":", 1) for line in lines[1:] if ":" in line)
                headers = {name.strip().lower(): value.strip() for name, value in fields}
                body = json.loads(await reader.readexactly(int(headers["content-length"])))
                self.paths.append(lines[0].split(" ", 2)[1])
                self.keys.append(headers.get("idempotency-key", ""))
                status = self.statuses.pop(0) if self.statuses else 200
                await self.bodies.put((status, body))
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def next(self) -> tuple[int, dict[str, Any]]:
        """The next request's status and body (fails after 10 s)."""
        return await asyncio.wait_for(self.bodies.get(), timeout=10)


@contextlib.asynccontextmanager
async def receiving(statuses: list[int] | None = None) -> AsyncIterator[WebhookReceiver]:
    """A started receiver whose ``url`` is ``http://127.0.0.1:PORT/hook``."""
    hook = WebhookReceiver(statuses or [])
    server = await asyncio.start_server(hook.handle, "127.0.0.1", 0)
    hook.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    async with server:
        yield hook
