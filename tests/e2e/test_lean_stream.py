"""What an open ``GET /events`` holds per connection (app.web.asgi's lean path).

The server runs in the test's own loop so the test can count its tasks: over
Hypercorn's HTTP/1.1 a stream keeps Hypercorn's two (the connection's reader
and the request), not Quart's receiver and handler tasks and the Request on
top; and with no task listening for ``http.disconnect``, a client that hangs
up must still be noticed (by the stream registry's sweeper).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from hypercorn.asyncio import serve

from app.serve.factory import create_app, runtime_of
from app.serve.server import hypercorn_config
from app.settings import settings_from_dict
from tests.support.waiting import until

STREAMS = 20
CONFIG = {
    "server": {"heartbeat": 0.4},
    "channels": [{"name": "lean", "kind": "notify"}],
}


@pytest.fixture
async def served() -> AsyncIterator[tuple[object, int]]:
    """The app under Hypercorn on a socket that listens before Hypercorn starts."""
    app = create_app(settings_from_dict(CONFIG), run_sources=False)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    config = hypercorn_config(f"fd://{listener.detach()}", None)  # Hypercorn closes it
    stop = asyncio.Event()
    serving = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    yield app, port
    stop.set()
    await asyncio.wait_for(serving, 10)


async def _open_stream(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /events?channel=lean HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"retry:"), 10)
    assert head.startswith(b"HTTP/1.1 200"), head
    return reader, writer


def _subscribers(app: object) -> int:
    runtime = runtime_of(app)  # type: ignore[arg-type]
    return sum(info.subscribers for info in runtime.broker.channels())


async def test_an_open_stream_keeps_only_hypercorn_tasks_and_hanging_up_frees_it(
    served: tuple[object, int],
) -> None:
    app, port = served
    first = await _open_stream(port)  # the server is up, its own tasks started
    tasks_before = len(asyncio.all_tasks())
    clients = [await _open_stream(port) for _ in range(STREAMS)]
    assert _subscribers(app) == STREAMS + 1
    assert len(asyncio.all_tasks()) - tasks_before == 2 * STREAMS

    clients.append(first)

    for index, (_reader, writer) in enumerate(clients):
        if index % 2:
            writer.transport.abort()  # RST
        else:
            writer.close()  # FIN
    await until(lambda: _subscribers(app) == 0, "every stream noticed its client left")
    await until(
        lambda: len(asyncio.all_tasks()) <= tasks_before - 2, "the connections' tasks ended"
    )


async def test_a_refused_stream_request_is_answered_by_quart_on_the_same_path(
    served: tuple[object, int],
) -> None:
    _app, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /events?channel=lean&history=x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 400"), head
    writer.close()
