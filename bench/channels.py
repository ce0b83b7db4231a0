"""What many channels cost: ``python bench/channels.py [-n 50000] [--no-limits]``.

Starts ``pulseboard serve`` (memory://, no sources, rate limits lifted) in a
subprocess, publishes one event to each of N new channel names over a few
keep-alive connections, then reports the server's RSS growth, one ``/metrics``
scrape (time and size) with the longest ``/healthz`` answer seen while it ran
(how long the scrape blocked the event loop), and the size of
``GET /api/channels``. ``--no-limits`` leaves ``limits.max_channels`` out of
the config, to measure a tree from before it existed. Traffic goes to
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 8
READY_TIMEOUT_S = 30.0
PROBE_EVERY_S = 0.002
SCRAPES = 3


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def config_text(port: int, count: int, limits: bool) -> str:
    """The server's TOML: publishing unthrottled, room for ``count`` channels."""
    lines = [
        f'[server]\nbind = "127.0.0.1:{port}"',
        '[broker]\nurl = "memory://"',
        "[limits]\npublish_rate = 1000000\npublish_burst = 1000000",
    ]
    if limits:
        lines.append(f"max_channels = {count + 10}")
    lines.append('[[channels]]\nname = "ops.deploys"\nkind = "notify"')
    return "\n".join(lines) + "\n"


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def wait_ready(url: str) -> None:
    """Return once the server answers ``/healthz``."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("server not ready")


async def publish_all(url: str, count: int) -> None:
    """One event to each of ``count`` new channels, over CONNECTIONS connections."""
    names = iter(range(count))
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def worker() -> None:
            for number in names:
                response = await client.post(f"/api/channels/b.c{number}/events", content=b"x")
                response.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))


async def scrape(url: str, path: str = "/metrics") -> tuple[float, int, float]:
    """Seconds and bytes of one GET ``path``, and the longest /healthz seen meanwhile.

    With ``path`` = ``/healthz`` it gives the floor: what a /healthz costs on
    this machine right now with nothing blocking the loop.
    """
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await client.get("/healthz")
        done = asyncio.Event()
        longest = 0.0

        async def probe() -> None:
            nonlocal longest
            while not done.is_set():
                started = time.perf_counter()
                await client.get("/healthz")
                longest = max(longest, time.perf_counter() - started)
                await asyncio.sleep(PROBE_EVERY_S)

        prober = asyncio.create_task(probe())
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        response = await client.get(path)
        took = time.perf_counter() - started
        done.set()
        await prober
        return took, len(response.content), longest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50_000, help="channels to create")
    parser.add_argument("--no-limits", action="store_true", help="omit limits.max_channels")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "channels.toml"
        config.write_text(config_text(port, args.n, limits=not args.no_limits))
        argv = [sys.executable, "-m", "app", "serve", "--config", str(config), "--no-sources"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        try:
            wait_ready(url)
            before = rss_kib(server.pid)
            started = time.perf_counter()
            asyncio.run(publish_all(url, args.n))
            published_s = time.perf_counter() - started
            time.sleep(1.0)
            after = rss_kib(server.pid)
            floor = [asyncio.run(scrape(url, "/healthz")) for _ in range(SCRAPES)]
            scrapes = [asyncio.run(scrape(url)) for _ in range(SCRAPES)]
            listing = httpx.get(url + "/api/channels", timeout=60).content
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"channels            {args.n:,} (published in {published_s:.1f} s)")
    print(f"RSS growth          {(after - before) / 1024:.1f} MiB")
    print(f"/metrics body       {scrapes[0][1] / 1024:.1f} KiB")
    print("/metrics scrape     " + ", ".join(f"{s[0] * 1000:.1f}" for s in scrapes) + " ms")
    print("/healthz meanwhile  " + ", ".join(f"{s[2] * 1000:.1f}" for s in scrapes) + " ms")
    print("/healthz alone      " + ", ".join(f"{s[0] * 1000:.1f}" for s in floor) + " ms")
    print(f"/api/channels       {len(listing) / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
