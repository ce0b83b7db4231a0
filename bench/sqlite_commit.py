"""Commit latency of the sqlite:// broker: how long one group commit takes, and how big.

Publishes arrive as NDJSON batches would (``--batch`` events at once,
``--rate`` events/s in all) on a SqliteBroker in this process, its database
in a temp dir (or ``--dir``: put it on the disk you will run on). Prints, for
each commit: p50, p90, p99 and max milliseconds and events per commit; for
each publish, the time until it was acknowledged; the database's size after.

    .venv/bin/python bench/sqlite_commit.py [--rate 5000] [--batch 50] [--seconds 10] [--fsync]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

from app.broker.sqlite import SqliteBroker
from app.broker.sqlite_store import Retention
from app.events import KindRegistry


def quantiles_ms(samples: list[float]) -> str:
    """p50 / p90 / p99 / max of ``samples`` (seconds), in ms."""
    if len(samples) < 2:
        return "n/a"
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return (
        f"p50 {cuts[49] * 1e3:.2f}  p90 {cuts[89] * 1e3:.2f}  "
        f"p99 {cuts[98] * 1e3:.2f}  max {max(samples) * 1e3:.2f} ms"
    )


def database_bytes(directory: Path) -> int:
    """The database file and its WAL."""
    return sum(path.stat().st_size for path in directory.glob("bench.db*"))


def timed(commit: Callable[..., None], durations: list[float], sizes: list[int]) -> Any:
    """``commit`` that records how long each call took and how many events it wrote."""

    def wrapper(events: list[Any], *args: Any) -> None:
        started = time.perf_counter()
        commit(events, *args)
        durations.append(time.perf_counter() - started)
        sizes.append(len(events))

    return wrapper


async def run(args: argparse.Namespace, directory: Path) -> None:
    """Publish at ``args.rate`` for ``args.seconds``; print the figures."""
    url = f"sqlite:///{directory}/bench.db"
    broker = SqliteBroker(url, KindRegistry(), Retention(history=1000), 1000, fsync=args.fsync)
    await broker.start()
    assert broker.store is not None
    durations: list[float] = []
    sizes: list[int] = []
    broker.store.commit = timed(broker.store.commit, durations, sizes)  # type: ignore[method-assign]
    acks: list[float] = []
    data = {"message": "x" * args.size, "level": "info"}

    async def one(channel: str) -> None:
        started = time.perf_counter()
        await broker.publish(channel, "notify", data)
        acks.append(time.perf_counter() - started)

    batches = int(args.rate * args.seconds / args.batch)
    interval = args.batch / args.rate
    tasks = []
    begin = time.perf_counter()
    for number in range(batches):
        delay = begin + number * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        channel = f"bench.{number % args.channels}"
        tasks += [asyncio.create_task(one(channel)) for _ in range(args.batch)]
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - begin
    size = await asyncio.to_thread(database_bytes, directory)
    await broker.close()
    published = len(acks)
    print(
        f"fsync={args.fsync}  {published} events in {elapsed:.1f} s ({published / elapsed:.0f}/s)"
    )
    print(
        f"commits: {len(durations)}, events per commit: median {statistics.median(sizes):.0f}, "
        f"max {max(sizes)}"
    )
    print(f"commit duration: {quantiles_ms(durations)}")
    print(f"publish -> acknowledged: {quantiles_ms(acks)}")
    print(f"database after: {size / 2**20:.1f} MiB")


def main() -> int:
    """Parse the options and run in a temp dir (or ``--dir``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--size", type=int, default=100, help="message characters")
    parser.add_argument("--fsync", action="store_true")
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    if args.dir is not None:
        uvloop.run(run(args, args.dir))
        return 0
    with tempfile.TemporaryDirectory(prefix="sqlite-commit-") as tmp:
        uvloop.run(run(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
