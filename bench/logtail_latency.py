"""Latency of the logtail source: a line appended to a file -> ``publish`` called.

A separate writer process appends numbered lines at a steady rate, each
carrying its CLOCK_MONOTONIC write time (system-wide on Linux); the source
runs in this process with a ``publish`` that records the delay. Prints p50,
p90, p99 and max, and checks that every line arrived exactly once, in order.

    .venv/bin/python bench/logtail_latency.py [--lines 1000] [--rate 50] [--poll] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from app.events import Event
from app.sources.logtail.source import LOGTAIL, LogTailConfig, LogTailSource


def write_lines(path: str, count: int, rate: float) -> None:
    """The writer process: ``count`` lines at ``rate`` per second, handle kept open."""
    with open(path, "ab", buffering=0) as handle:
        start = time.monotonic()
        for n in range(count):
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
            handle.write(f"{n} {time.monotonic_ns()} INFO bench line\n".encode())


async def measure(path: Path, count: int, rate: float, poll: bool) -> list[float]:
    """Run the source while the writer appends; return the delays in milliseconds."""
    delays: list[float] = []
    order: list[int] = []
    done = asyncio.Event()

    async def publish(channel: str, kind: str, data: dict[str, Any]) -> Event:
        now = time.monotonic_ns()
        number, stamp, _ = data["line"].split(" ", 2)
        delays.append((now - int(stamp)) / 1e6)
        order.append(int(number))
        if len(order) >= count:
            done.set()
        return Event(number, channel, kind, time.time(), data, len(order), len(order))

    config = msgspec.convert({"type": "logtail", "path": str(path), "poll": poll}, LogTailConfig)
    source = LOGTAIL.create(config)
    assert isinstance(source, LogTailSource)
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(publish, stop))
    await asyncio.wait_for(source.ready.wait(), 5)
    writer = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--write", str(path), str(count), str(rate)
    )
    try:
        await asyncio.wait_for(done.wait(), timeout=count / rate + 30)
        await asyncio.sleep(0.5)  # late duplicates would show up here
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await asyncio.wait_for(writer.wait(), 5)
    if order != list(range(count)):
        raise SystemExit(f"lines lost, doubled or out of order: {len(order)} delivered")
    return delays


def report(delays: list[float], label: str) -> None:
    """Print the figures."""
    cuts = statistics.quantiles(delays, n=100, method="inclusive")
    print(
        f"{label}: {len(delays)} lines, exactly once and in order; "
        f"append -> publish p50 {cuts[49]:.2f} ms, p90 {cuts[89]:.2f} ms, "
        f"p99 {cuts[98]:.2f} ms, max {max(delays):.2f} ms"
    )


def main() -> None:
    """Parse the arguments and run one measurement."""
    if len(sys.argv) == 5 and sys.argv[1] == "--write":
        write_lines(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="lines per second")
    parser.add_argument("--poll", action="store_true", help="watchfiles force_polling")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as the server does")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.log"
        path.touch()
        delays = asyncio.run(measure(path, args.lines, args.rate, args.poll))
    loop = "uvloop" if args.uvloop else "asyncio"
    report(delays, f"{'poll' if args.poll else 'inotify'}, {loop}, {args.rate:g} lines/s")


if __name__ == "__main__":
    main()
