"""How fast the log viewer's search answers over 1,000,000 lines in a sqlite:// store.

Run: ``.venv/bin/python bench/log_search.py [--lines N] [--db PATH]``. Fills a
database with N log lines of one channel (once: a database that already holds
them is reused), then asks the app in-process, through its real route
``GET /channels/<c>/older`` (what the viewer's "load older" row fetches), for:

- (a) a frequent match (one line in 50),
- (b) a match 900,000 lines back (one line in the whole log),
- (c) no match at all;

(b) and (c) as plain text (SQLite's ``instr`` finds it) and as a regex (RE2 on each line).

For each it prints the first page's time (what the viewer shows first: rows,
or a "searched back to … searching older" row) and the time until the search
has its first match, or reached the start of retention, following the
continuation rows as the viewer does. Best of ``--rounds`` rounds; the
figures in docs/performance.md come from here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import tempfile
import time
from html import unescape
from pathlib import Path
from typing import Any

from app.broker.sqlite_store import SqliteLog
from app.events import Event, format_event_id
from app.serve.factory import create_app
from app.settings import settings_from_dict

CHANNEL = "log.bench"
BATCH = 20_000
NEEDLE_BACK = 900_000
SEARCHES = {  # plain text runs as SQLite's instr, a regex as RE2 called from SQLite
    "(a) frequent match": "status=5\\d\\d",
    "(b) match 900,000 lines back": "needle-7f3a",
    "(b') the same, as a regex": "needle-[0-9a-f]{4}",
    "(c) no match": "no-such-thing-anywhere",
    "(c') no match, as a regex": "no-such-thing-any[w]here",
}
NEXT = re.compile(r'hx-get="(/channels/[^"]+/older\?before=[^"]+)"')  # the next page's row


def line(n: int, needle_at: int) -> str:
    status = 503 if n % 50 == 0 else 200
    text = (
        f"2026-12-01T13:{n // 60 % 60:02d}:{n % 60:02d}Z INFO worker-{n % 37} "
        f"GET /api/v1/items/{n % 1000} status={status} took {n % 97}ms request={n:07d}"
    )
    return text + " needle-7f3a" if n == needle_at else text


def fill(path: Path, lines: int) -> None:
    """Store ``lines`` lines of one log channel, unless the database holds them already."""
    store = SqliteLog(path)
    try:
        if store.last_seq >= lines:
            return
        needle_at = lines - NEEDLE_BACK if lines > NEEDLE_BACK else 0
        now = time.time() - lines / 100
        for start in range(store.last_seq, lines, BATCH):
            events = [
                Event(
                    format_event_id(store.epoch, n + 1),
                    CHANNEL,
                    "log",
                    now + n / 100,
                    {"line": line(n, needle_at), "file": "bench.log", "level": "info"},
                    n + 1,
                    n,
                )
                for n in range(start, min(start + BATCH, lines))
            ]
            store.commit(events, keep=lines)
    finally:
        store.close()


async def measure(path: Path, rounds: int) -> dict[str, tuple[float, float, int]]:
    settings = settings_from_dict(
        {
            "broker": {
                "url": f"sqlite:///{path}",
                "history": 1000,
                "retention": {"max_events": 10_000_000},
            },
            "channels": [{"name": CHANNEL, "kind": "log"}],
        }
    )
    app = create_app(settings, run_sources=False)
    results: dict[str, tuple[float, float, int]] = {}
    async with app.test_app():
        client = app.test_client()
        for name, pattern in SEARCHES.items():
            best_first = best_match = float("inf")
            requests = 0
            for _ in range(rounds):
                first, matched, requests = await search(client, pattern)
                best_first, best_match = min(best_first, first), min(best_match, matched)
            results[name] = (best_first, best_match, requests)
    return results


async def search(client: Any, pattern: str) -> tuple[float, float, int]:
    """First page's seconds, seconds until a match (or the start), requests it took."""
    started = time.perf_counter()
    query = {"q": pattern}
    first = 0.0
    requests = 0
    while True:
        response = await client.get(f"/channels/{CHANNEL}/older", query_string=query)
        body = await response.get_data(as_text=True)
        requests += 1
        if requests == 1:
            first = time.perf_counter() - started
        found = NEXT.search(body)
        if "<mark>" in body or found is None:
            return first, time.perf_counter() - started, requests
        query = {"q": pattern, "before": unescape(found.group(1)).split("?before=", 1)[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    path = args.db or Path(tempfile.gettempdir()) / f"pulseboard-search-{args.lines}.db"
    started = time.perf_counter()
    fill(path, args.lines)
    print(f"{args.lines:,} lines in {path} ({time.perf_counter() - started:.1f} s to fill)")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = asyncio.run(measure(path, args.rounds))
    print(f"{'search':32} {'first page':>11} {'first match':>12} {'requests':>9}")
    for name, (first, matched, requests) in results.items():
        print(f"{name:32} {first * 1000:9.0f}ms {matched * 1000:10.0f}ms {requests:9d}")


if __name__ == "__main__":
    main()
