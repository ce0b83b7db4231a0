"""What filtered log viewers cost the server, in process: CPU per delivery, no network.

N ``format=html`` streams of one log channel, each with a ``q=`` filter (K
distinct patterns) or none, run on sockets that take every write at once;
E lines are published and the process CPU time is divided by the frames
written. Without sockets, loadgen or a shared core in the way, this is the
figure a noisy machine cannot blur: the fan-out's own cost (the hub, the
filters, the render, the stream loop), not Hypercorn's or the kernel's.

    .venv/bin/python bench/filtered_fanout.py                  # the issue-18 shapes
    .venv/bin/python bench/filtered_fanout.py --viewers 1000 --patterns 500 --every 10
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from app.broker.base import Start
from app.broker.memory import MemoryBroker
from app.events import KindRegistry
from app.filters import EventFilter, compile_user_regex
from app.render import Renderer, create_environment
from app.web.streaming.loop import EventStream, StreamRequest
from app.web.streaming.registry import StreamRegistry, StreamTimings

CHANNEL = "log.bench"
SETTLE_TURNS = 200


class Socket:
    """A direct socket that takes everything and counts the frames written."""

    def __init__(self) -> None:
        self.frames = 0

    def write_now(self, body: bytes) -> bool:
        self.frames += body.count(b"\n\n")
        return True

    async def drain(self) -> None:
        return None

    def abort(self) -> None:
        return None


async def _ignore(_message: dict[str, Any]) -> None:
    return None


def pattern(n: int, every: int) -> str:
    """Filter number ``n``: distinct per n, matching every line or one line in ``every``."""
    return f"bench line|nomatch{n}" if every == 1 else rf"\bt{n % every}\b|nomatch{n}"


async def measure(viewers: int, patterns: int, lines: int, every: int) -> dict[str, float]:
    """Server CPU for ``lines`` lines to ``viewers`` streams (``patterns`` 0: unfiltered)."""
    kinds = KindRegistry()
    renderer = Renderer(create_environment(kinds), kinds)
    registry = StreamRegistry(StreamTimings(heartbeat_s=600.0, write_timeout_s=600.0, retry_ms=1))
    broker = MemoryBroker(kinds, history_size=1000, max_lag=1000)
    await broker.declare(CHANNEL, "log")
    sockets, tasks = [], []
    for i in range(viewers):
        regex = compile_user_regex(pattern(i % patterns, every)) if patterns else None
        request = StreamRequest((CHANNEL,), "html", EventFilter(kinds, regex), Start(), "bench")
        sockets.append(Socket())
        stream = EventStream(request, broker, renderer, registry)
        tasks.append(asyncio.create_task(stream.run(_ignore, sockets[-1])))
    for _ in range(SETTLE_TURNS):
        await asyncio.sleep(0)
    before = sum(sock.frames for sock in sockets)
    cpu = time.process_time()
    for n in range(lines):
        line = f"INFO pbts{n} bench line t{n % 10}"
        await broker.publish(CHANNEL, "log", {"line": line, "file": "b.log", "level": "info"})
        await asyncio.sleep(0)
    for _ in range(SETTLE_TURNS):
        await asyncio.sleep(0)
    used = time.process_time() - cpu
    delivered = sum(sock.frames for sock in sockets) - before
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "delivered": delivered,
        "us_per_delivery": 1e6 * used / max(delivered, 1),
        "us_per_line_per_viewer": 1e6 * used / lines / viewers,
    }


def main(argv: list[str] | None = None) -> int:
    """Print the shapes of issue 18 (or the one asked for)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int)
    parser.add_argument("--patterns", type=int, default=500)
    parser.add_argument("--every", type=int, default=1, help="a filter matches 1 line in this")
    parser.add_argument("--lines", type=int, default=200)
    args = parser.parse_args(argv)
    shapes = [
        ("unfiltered", 1000, 0, 1),
        ("500 q=, all matching", 1000, 500, 1),
        ("500 q=, 1 line in 10", 1000, 500, 10),
    ]
    if args.viewers:
        shapes = [("asked", args.viewers, args.patterns, args.every)]
    for name, viewers, patterns, every in shapes:
        result = asyncio.run(measure(viewers, patterns, args.lines, every))
        print(
            f"{name:22s} {viewers} viewers: {result['delivered']:>7,.0f} frames, "
            f"{result['us_per_delivery']:5.1f} us/delivery, "
            f"{result['us_per_line_per_viewer']:5.2f} us per line per viewer"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
