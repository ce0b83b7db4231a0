"""A real Hypercorn serving the app with its fast paths on, and with them probed off.

The server runs in the test's own loop, so a test can make the probe fail by
monkeypatching (undone afterwards) and see the standard path serve instead.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypercorn.asyncio import serve, tcp_server
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import AsyncioSingleTask, EventWrapper, WorkerContext
from hypercorn.config import Config

from app.serve.factory import create_app, runtime_of
from app.serve.server import hypercorn_config
from app.settings import settings_from_dict
from app.web import fastpath
from app.web.asgi import StreamingQuart
from tests.support.waiting import until

CHANNEL = "fp"
CONFIG = {"server": {"heartbeat": 0.4}, "channels": [{"name": CHANNEL, "kind": "notify"}]}
OFF = {"lean_stream": 0, "connection_control": 0, "lean_answer": 0, "lean_event": 0, "lean_idle": 0}


@asynccontextmanager
async def served(app: StreamingQuart) -> AsyncIterator[int]:
    """``app`` under Hypercorn, as app.serve.server runs it, on a free port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = int(listener.getsockname()[1])
    config = hypercorn_config(f"fd://{listener.detach()}", None)  # Hypercorn closes it
    stop = asyncio.Event()
    with fastpath.lean_events(app.fast_paths), fastpath.lean_idle_timers(app.fast_paths):
        serving = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
        try:
            yield port
        finally:
            stop.set()
            await asyncio.wait_for(serving, 10)


async def request(port: int, line: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{line}\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return reader, writer


async def fast_path_gauge(port: int) -> dict[str, int]:
    reader, writer = await request(port, "GET /metrics HTTP/1.0")
    body = (await asyncio.wait_for(reader.read(), 10)).decode()
    writer.close()
    gauge = {}
    for line in body.splitlines():
        if line.startswith("pulseboard_fast_path{"):
            labels, value = line.split(" ")
            gauge[labels.split('"')[1]] = int(float(value))
    return gauge


async def streams_and_ends(app: StreamingQuart, port: int) -> None:
    """A stream gets a published event; hanging up frees its subscription."""
    reader, writer = await request(port, f"GET /events?channel={CHANNEL} HTTP/1.1")
    head = await asyncio.wait_for(reader.readuntil(b"retry:"), 10)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"text/event-stream" in head
    assert b"x-pulseboard-stream" not in head
    runtime = runtime_of(app)
    await runtime.publish(CHANNEL, "notify", {"message": "through the door"})
    frame = await asyncio.wait_for(reader.readuntil(b"through the door"), 10)
    assert f"event: {CHANNEL}".encode() in frame
    writer.close()
    await until(
        lambda: sum(info.subscribers for info in runtime.broker.channels()) == 0,
        "the stream noticed its client left",
    )


async def test_the_pinned_versions_serve_every_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(settings_from_dict(CONFIG), run_sources=False)
    assert app.fast_paths == fastpath.FastPaths(True, True, True, True, True)
    sockets: list[fastpath.ChunkedSocket | None] = []
    real = fastpath.lean_socket

    def spied(*args: Any) -> fastpath.ChunkedSocket | None:
        sockets.append(real(*args))
        return sockets[-1]

    monkeypatch.setattr(fastpath, "lean_socket", spied)
    async with served(app) as port:
        assert await fast_path_gauge(port) == {name: 1 for name in OFF}
        await streams_and_ends(app, port)
        assert WorkerContext.event_class is fastpath.LeanEvent
        assert tcp_server.AsyncioSingleTask is fastpath.LeanIdleTask
    assert len(sockets) == 1 and isinstance(sockets[0], fastpath.ChunkedSocket)
    assert WorkerContext.event_class is EventWrapper  # put back
    assert tcp_server.AsyncioSingleTask is AsyncioSingleTask


def newer_releases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastpath, "version", lambda name: "9.9.0")


def an_attribute_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = (TCPServer, "socket_writer")
    monkeypatch.setattr(fastpath, "CONNECTION_SETS", (*fastpath.CONNECTION_SETS, gone))
    monkeypatch.setattr(fastpath, "EVENT_NEEDS", ((WorkerContext, "event_factory"),))
    monkeypatch.setattr(fastpath, "IDLE_NEEDS", ((TCPServer, "_idle_timer"),))


@pytest.mark.parametrize("mismatch", [newer_releases, an_attribute_gone])
async def test_a_probe_mismatch_falls_back_to_the_standard_path_that_still_streams(
    monkeypatch: pytest.MonkeyPatch, mismatch: Callable[[pytest.MonkeyPatch], None]
) -> None:
    mismatch(monkeypatch)
    app = create_app(settings_from_dict(CONFIG), run_sources=False)
    assert app.fast_paths == fastpath.STANDARD
    used: list[str] = []
    monkeypatch.setattr(fastpath, "lean_socket", lambda *_: used.append("lean"))
    monkeypatch.setattr(fastpath, "stream_connection", lambda *_: used.append("connection"))
    async with served(app) as port:
        assert await fast_path_gauge(port) == OFF
        await streams_and_ends(app, port)
        reader, writer = await request(port, f"GET /events?channel={CHANNEL}&history=x HTTP/1.1")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 400"), head
        writer.close()
    assert used == []


async def test_an_idle_keep_alive_connection_is_closed_after_the_timeout_and_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Config, "keep_alive_timeout", 2.0)  # a slow CI machine answers within
    monkeypatch.setattr(fastpath, "IDLE_GRACE_S", 0.1)
    app = create_app(settings_from_dict(CONFIG), run_sources=False)
    async with served(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(3):  # requests closer than the grace: the connection stays
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                assert head.startswith(b"HTTP/1.1 200"), head
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await asyncio.wait_for(reader.readexactly(length), 10)
            assert await asyncio.wait_for(reader.read(), 10) == b""  # then idle: closed
        finally:
            writer.close()
