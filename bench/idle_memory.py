"""Where an idle stream's memory goes: ``python bench/idle_memory.py [-n 2000]``.

Serves Pulseboard in this process (Hypercorn on uvloop, memory://, one
channel), opens N idle ``/events`` streams from a client subprocess, and
prints the server's RSS growth per connection and tracemalloc's per
connection bytes grouped by the innermost frame of a package or of ``app/``
(so asyncio's objects count for whoever made them). ``--floor`` serves a
trivial ASGI app instead (headers, one chunk, then nothing): Hypercorn's and
asyncio's own cost per open response, the floor under any app.

tracemalloc slows the server and adds its own bookkeeping to RSS; the RSS
figure is taken in a second run without it. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import socket
import subprocess
import sys
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import uvloop
from hypercorn.asyncio import serve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.serve.factory import create_app  # noqa: E402
from app.serve.server import hypercorn_config  # noqa: E402
from app.settings import settings_from_dict  # noqa: E402
from app.web import fastpath  # noqa: E402

CONFIG = {
    "server": {"heartbeat": 15.0},
    "limits": {"streams_per_client": 100_000},
    "channels": [{"name": "bench", "kind": "notify"}],
}
CLIENT = """
import socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
request = b"GET /events?channel=bench HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n"
sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
for sock in sockets:
    sock.sendall(request)
for sock in sockets:
    sock.settimeout(30)
    head = b""
    while b"retry:" not in head:
        head += sock.recv(4096)
print("connected", flush=True)
sys.stdin.read()
"""


async def trivial_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Headers and one chunk, then hold the response open until the client leaves."""
    if scope["type"] != "http":
        return
    await receive()
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"retry: 1000\n\n", "more_body": True})
    while (await receive())["type"] != "http.disconnect":
        pass


def rss_kib() -> int:
    """This process's resident set, KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def owner(trace: tracemalloc.Traceback) -> str:
    """The innermost frame in a package or in app/, else the innermost frame."""
    names = [frame.filename for frame in trace]
    for name in reversed(names):
        if "site-packages/" in name:
            return name.split("site-packages/")[1]
        if f"{ROOT}/app/" in name:
            return name.removeprefix(f"{ROOT}/")
    return names[-1]


async def measure(count: int, floor: bool, trace: bool) -> None:
    """Serve, open ``count`` idle streams, print the per-connection figures."""
    app = trivial_app if floor else create_app(settings_from_dict(CONFIG), run_sources=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = asyncio.Event()
    config = hypercorn_config(f"127.0.0.1:{port}", None)
    serving = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    await asyncio.sleep(1.0)
    gc.collect()
    if trace:
        tracemalloc.start(25)
    before = tracemalloc.take_snapshot() if trace else None
    rss_before = rss_kib()
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, str(port), str(count),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert client.stdout is not None and client.stdin is not None
    await asyncio.wait_for(client.stdout.readline(), 120)
    await asyncio.sleep(1.0)
    gc.collect()
    label = "trivial ASGI app (the floor)" if floor else "Pulseboard"
    if before is None:
        print(f"{label}: {count} idle streams, RSS {(rss_kib() - rss_before) / count:.1f} KiB each")
    else:
        after = tracemalloc.take_snapshot()
        by_owner: Counter[str] = Counter()
        for stat in after.compare_to(before, "traceback"):
            by_owner[owner(stat.traceback)] += stat.size_diff
        total = sum(by_owner.values())
        print(f"{label}: {count} idle streams, {total / count / 1024:.2f} KiB of objects each")
        for name, size in by_owner.most_common(20):
            print(f"  {size / count:7.0f} B  {name}")
    client.stdin.close()
    await client.wait()
    stop.set()
    await asyncio.wait_for(serving, 30)


def main() -> None:
    """Parse arguments; one run for RSS, one with tracemalloc for the breakdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=2000, help="idle streams")
    parser.add_argument("--floor", action="store_true", help="a trivial ASGI app instead")
    args = parser.parse_args()
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    with fastpath.lean_events(fastpath.probe()):
        for trace in (False, True):
            uvloop.run(measure(args.count, args.floor, trace))


if __name__ == "__main__":
    main()
