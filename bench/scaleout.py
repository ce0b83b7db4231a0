"""Scale-out figure: 1,000 subscribers over 2 gateways sharing Redis, next to one memory:// process.

Both set-ups run in the same invocation, servers (and redis-server) pinned to
core 0 and the load generator to core 1, with the rate stepped up as in S3:
one line per step, then the highest sustained deliveries/s (p99 <= 250 ms, no
loss) per set-up. Usage: ``.venv/bin/python bench/scaleout.py`` (a few minutes).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from run import LOAD_CORE, LOADGEN, OPEN_LOOP, PYTHON, ROOT, SERVER_CORE, Server, free_port

SUBSCRIBERS = 1000
RATES = (5, 10, 20, 30, 40, 50, 70)
STEP_S = 8
RESULTS = ROOT / "bench" / "results"


def config_text(broker_url: str) -> str:
    """The bench config on ``broker_url``, limits out of the way."""
    return (
        "[server]\nmax_lag = 1000\nheartbeat = 15.0\n"
        f'[broker]\nurl = "{broker_url}"\nhistory = 1000\n'
        "[limits]\nstreams_per_client = 20000\npublish_rate = 1000000.0\n"
        "publish_burst = 1000000\n"
        '[[channels]]\nname = "bench"\nkind = "notify"\n'
    )


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A throwaway redis-server on core 0; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, "redis-server", "--port", str(port), "--bind",
         "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            probe = subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, check=False
            )
            if probe.stdout.strip() == b"PONG":
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def gateways(workdir: Path, broker_url: str, count: int) -> Iterator[list[Server]]:
    """``count`` pulseboard serve processes on ``broker_url``, all on core 0."""
    config = workdir / f"pulseboard-{count}.toml"
    config.write_text(config_text(broker_url))
    with ExitStack() as stack:
        servers = []
        for index in range(count):
            port = free_port()
            argv = [str(PYTHON), "-m", "app", "serve", "--config", str(config),
                    "--bind", f"127.0.0.1:{port}"]  # fmt: skip
            server = Server(f"gateway-{index}", argv, port, workdir / f"gateway-{index}.log")
            server.start()
            stack.callback(server.stop)
            servers.append(server)
        yield servers


def steps(servers: list[Server]) -> list[dict[str, Any]]:
    """Run the stepped load over ``servers``; loadgen's step records."""
    argv = [
        "taskset", "-c", LOAD_CORE, str(LOADGEN),
        "-url", servers[0].url,
        "-subs", str(SUBSCRIBERS),
        "-mode", "post",
        "-rates", ",".join(str(rate) for rate in RATES),
        "-step", f"{STEP_S}s",
        "-deadline", "240s",
        *OPEN_LOOP,
    ]  # fmt: skip
    if len(servers) > 1:
        argv += ["-sub-urls", ",".join(server.url for server in servers[1:])]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return [record for record in records if record.get("event") == "step"]


def best(records: list[dict[str, Any]]) -> float:
    """Highest delivered/s among steps that passed."""
    return max((r["delivered_per_s"] for r in records if not r["failed"]), default=0.0)


def main() -> None:
    """Measure memory:// (1 process) and redis:// (2 gateways); print and save the figures."""
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed")
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with gateways(workdir, "memory://", 1) as servers:
            results["memory, 1 process"] = steps(servers)
        with redis_server(workdir) as url, gateways(workdir, url, 2) as servers:
            results["redis, 2 gateways"] = steps(servers)
    print(f"{'set-up':20} {'rate':>5} {'delivered/s':>12} {'p50 ms':>8} {'p99 ms':>8}  failed")
    for name, records in results.items():
        for r in records:
            print(f"{name:20} {r['rate']:>5g} {r['delivered_per_s']:>12,.0f} "
                  f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}  {r['failed']}")  # fmt: skip
        print(f"{name:20} highest sustained: {best(records):,.0f} deliveries/s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"scaleout-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
