"""The naive baseline: a Quart SSE app written the way Quart's SSE how-to does it.

One ``asyncio.Queue`` per client, an async generator response, every event
encoded (JSON, then SSE) once per client. It answers the requests the benchmark
makes the way Pulseboard does: ``GET /events?channel=C``,
``POST /api/channels/C/events`` (a JSON payload, or an NDJSON batch) and
``GET /api/channels`` with subscriber counts. With ``--log PATH`` it follows
a file with ``watchfiles.awatch`` at its defaults and publishes each new line.

Deliberate oddities: it is meant to be naive (no history, no ids beyond a
counter, no heartbeats, unbounded queues). Do not optimise it; it is the
yardstick. It runs on uvloop like Pulseboard, so ratios compare designs, not
event loops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections import defaultdict
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import uvloop
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, Response, abort, make_response, request
from quart.typing import ResponseReturnValue
from watchfiles import awatch

app = Quart(__name__)
clients: defaultdict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
counter = 0


@dataclass
class ServerSentEvent:
    """The how-to's helper, as written there."""

    data: str
    event: str | None = None
    id: int | None = None
    retry: int | None = None

    def encode(self) -> bytes:
        """The event as SSE bytes."""
        message = f"data: {self.data}"
        if self.event is not None:
            message = f"{message}\nevent: {self.event}"
        if self.id is not None:
            message = f"{message}\nid: {self.id}"
        if self.retry is not None:
            message = f"{message}\nretry: {self.retry}"
        message = f"{message}\n\n"
        return message.encode("utf-8")


def publish(channel: str, kind: str, payload: dict[str, Any]) -> int:
    """Put one event in every subscriber's queue; return its id."""
    global counter
    counter += 1
    event = {"id": counter, "channel": channel, "kind": kind, "time": time.time(), "data": payload}
    for queue in clients[channel]:
        queue.put_nowait(event)
    return counter


@app.get("/events")
async def sse() -> ResponseReturnValue:
    """The how-to's stream: a queue per client, encoded per client."""
    if "text/event-stream" not in request.accept_mimetypes:  # type: ignore[comparison-overlap]
        abort(400)
    channel = request.args.get("channel", "")
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    clients[channel].add(queue)

    async def send_events() -> AsyncGenerator[bytes, None]:
        try:
            while True:
                event = await queue.get()
                yield ServerSentEvent(json.dumps(event), event=channel, id=event["id"]).encode()
        finally:
            clients[channel].discard(queue)

    response: Response = await make_response(  # type: ignore[assignment]
        send_events(),
        {
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "Transfer-Encoding": "chunked",
        },
    )
    response.timeout = None
    return response


@app.post("/api/channels/<channel>/events")
async def publish_endpoint(channel: str) -> ResponseReturnValue:
    """Publish a JSON payload, or an NDJSON batch of them."""
    if request.mimetype == "application/x-ndjson":
        lines = (await request.get_data(as_text=True)).splitlines()
        ids = [publish(channel, "notify", json.loads(line)) for line in lines if line.strip()]
        return {"ids": ids}, 201
    payload = await request.get_json()
    if not isinstance(payload, dict) or "message" not in payload:
        abort(400)
    return {"id": publish(channel, "notify", payload)}, 201


@app.get("/api/channels")
async def channel_list() -> ResponseReturnValue:
    """Channels with their subscriber counts."""
    listing = [{"name": name, "subscribers": len(queues)} for name, queues in clients.items()]
    return {"channels": listing}


async def tail(path: str, channel: str) -> None:
    """Publish every line appended to ``path``, woken by watchfiles at its defaults."""
    with open(path, "rb") as file:  # noqa: ASYNC230 - the naive way, on purpose
        file.seek(0, 2)
        async for _changes in awatch(path):
            for line in file.read().splitlines():
                publish(channel, "log", {"line": line.decode(errors="replace"), "file": path})


async def main(bind: str, log: str | None, log_channel: str) -> None:
    """Serve until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    config = Config()
    config.bind = [bind]
    config.accesslog = None
    config.graceful_timeout = 1.0
    if log is not None:
        tailer = asyncio.create_task(tail(log, log_channel))
        app.after_serving(lambda: _cancel(tailer))
    await serve(app, config, shutdown_trigger=stop.wait)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1:8001")
    parser.add_argument("--log", help="a file to follow, one event per appended line")
    parser.add_argument("--log-channel", default="log.bench")
    arguments = parser.parse_args()
    uvloop.run(main(arguments.bind, arguments.log, arguments.log_channel))
