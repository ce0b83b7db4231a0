"""CPU per delivery of the stream code alone: the hub's direct path, no server, no sockets.

Parks ``--subscribers`` json streams on fake sockets on a memory broker,
publishes ``--events`` events one at a time and prints the process CPU per
delivery (publish, fan-out, frame, the once-per-turn write). A figure for
comparing two commits of the stream code on a busy machine, where the
end-to-end run (``make bench-quick``) is dominated by the server and the load.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from app.broker.base import Start
from app.broker.memory import MemoryBroker
from app.events import BUILTIN_KINDS, KindRegistry
from app.filters import EventFilter
from app.render import Renderer, create_environment
from app.web.streaming.loop import EventStream, StreamRequest
from app.web.streaming.registry import StreamRegistry, StreamTimings


class NullSocket:
    """A direct socket that takes every write at once."""

    closed = False

    def write_now(self, body: bytes) -> bool:
        return True

    async def drain(self) -> None:
        return None

    def abort(self) -> None:
        self.closed = True


async def _send(message: dict[str, Any]) -> None:
    return None


async def measure(subscribers: int, events: int) -> float:
    """CPU seconds per delivery."""
    kinds = KindRegistry()
    for kind in BUILTIN_KINDS:
        kinds.register(kind)
    broker = MemoryBroker(kinds, history_size=1000, max_lag=events + 1)
    await broker.declare("bench.notes", "notify")
    registry = StreamRegistry(StreamTimings(600.0, 600.0, 1000))
    renderer = Renderer(create_environment(kinds), kinds)
    request = StreamRequest(("bench.notes",), "json", EventFilter(kinds), Start(), "bench")
    streams = [EventStream(request, broker, renderer, registry) for _ in range(subscribers)]
    tasks = [asyncio.create_task(stream.run(_send, NullSocket())) for stream in streams]
    for _turn in range(100):  # a few loop turns: every stream subscribes, writes its start, parks
        await asyncio.sleep(0)
    if len(registry.streams) != subscribers:
        raise SystemExit(f"only {len(registry.streams)} of {subscribers} streams started")
    started = time.process_time()
    for n in range(events):
        await broker.publish("bench.notes", "notify", {"message": f"m{n}", "level": "info"})
        await asyncio.sleep(0)  # the loop turn that writes what the hub handed over
    cpu = time.process_time() - started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return cpu / (subscribers * events)


def main() -> None:
    """Print the figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    per_delivery = asyncio.run(measure(args.subscribers, args.events))
    print(f"{per_delivery * 1e6:.3f} µs CPU per delivery ({args.subscribers} subscribers)")


if __name__ == "__main__":
    main()
