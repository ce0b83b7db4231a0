"""Shutdown spreads reconnects: every open stream is told a jittered ``retry:`` before its end."""

from __future__ import annotations

import asyncio
import re
import signal

import httpx
import pytest

from tests.e2e.conftest import ServerFactory
from tests.support import run_async
from tests.support.server import ServerProcess
from tests.support.waiting import wait_until

STREAMS = 30
RETRY = re.compile(rb"^retry: (\d+)$", re.MULTILINE)


def subscribers(server: ServerProcess, channel: str) -> int:
    listing = httpx.get(f"{server.url}/api/channels").json()["channels"]
    return next((c["subscribers"] for c in listing if c["name"] == channel), 0)


async def read_to_eof(server: ServerProcess, channel: str, opened: list[int]) -> bytes:
    """One stream over a raw socket (HTTP/1.0: no chunked framing), read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(f"GET /events?channel={channel} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
    received = await asyncio.wait_for(reader.readuntil(b"retry: "), 30)
    opened.append(1)
    while chunk := await asyncio.wait_for(reader.read(65536), 60):
        received += chunk
    writer.close()
    return received


@pytest.mark.slow
def test_sigterm_tells_every_open_stream_a_jittered_retry_before_closing(
    start_server: ServerFactory,
) -> None:
    channel = "t.spread"
    server = start_server(
        {
            "server": {"retry_ms": 1500},
            "limits": {"streams_per_client": 1000},
            "channels": [{"name": channel, "kind": "notify"}],  # listed before any event
        }
    )

    async def scenario() -> list[bytes]:
        opened: list[int] = []
        reads = [asyncio.create_task(read_to_eof(server, channel, opened)) for _ in range(STREAMS)]
        await asyncio.to_thread(
            wait_until,
            # the server counts a subscriber before its client has read the headers
            lambda: subscribers(server, channel) == STREAMS and len(opened) == STREAMS,
            "streams open and read",
            30,
        )
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        return await asyncio.gather(*reads)

    bodies = run_async(scenario())
    assert server.process is not None and server.process.wait(30) == 0
    opening, closing = [], []
    for body in bodies:
        values = [int(value) for value in RETRY.findall(body)]
        assert len(values) == 2, body  # the opening's, and the one told at shutdown
        assert body.rstrip(b"\n").endswith(b"retry: %d" % values[1]), body[-200:]
        opening.append(values[0])
        closing.append(values[1])
    assert all(1500 <= value < 3000 for value in opening), opening
    assert all(1000 <= value < 5000 for value in closing), closing
    assert len(set(opening)) > 1, opening
    assert len(set(closing)) > 1, closing
