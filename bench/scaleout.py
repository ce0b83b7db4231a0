"""Scale-out figures: gateways sharing Redis next to one memory:// process, and what workers cost.

Default: 1,000 subscribers over 2 gateways sharing Redis, next to one
memory:// process, in the same invocation, servers (and redis-server) pinned
to core 0 and the load generator to core 1, with the rate stepped up as in
S3: one line per step, then the highest sustained deliveries/s (p99 <= 250
ms, no loss) per set-up. Usage: ``.venv/bin/python bench/scaleout.py`` (a
few minutes).

``--workers`` (issue 18, point 5): with two cores shared with the load
generator, wall-clock scaling cannot be measured honestly here, so this
measures cost instead: ``serve --workers 2`` against ``--workers 1`` on
redis:// at S2 (1,000 x 50 ev/s) and S3 (stepped) loads, total server CPU
per delivery (every process of the serve tree plus redis-server, from
/proc); then how many publishes/s one Redis takes through the Lua path,
single POSTs and NDJSON batches, with redis-server's CPU per event.
``--workers --repeat N`` alternates the two set-ups N times and reports every
pair's ratio and their median.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from run import (
    LOAD_CORE,
    LOADGEN,
    OPEN_LOOP,
    PYTHON,
    ROOT,
    SERVER_CORE,
    Server,
    cpu_pressure,
    free_port,
    machine,
    raise_file_limit,
)

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
def redis_server(workdir: Path) -> Iterator[tuple[str, int]]:
    """A throwaway redis-server on core 0; yields its URL and its pid."""
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
        yield f"redis://127.0.0.1:{port}/0", process.pid
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


def main(argv: list[str] | None = None) -> None:
    """Measure memory:// (1 process) and redis:// (2 gateways), or ``--workers``; print, save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", action="store_true", help="what --workers 2 costs (18.5)")
    parser.add_argument("--loads", help="with --workers: some of S2,S3,publish-post,publish-ndjson")
    parser.add_argument("--repeat", type=int, default=1, help="with --workers: pairs of runs")
    args = parser.parse_args(argv)
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed")
    if args.workers:
        workers_main(tuple(args.loads.split(",")) if args.loads else None, args.repeat)
        return
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with gateways(workdir, "memory://", 1) as servers:
            results["memory, 1 process"] = steps(servers)
        with redis_server(workdir) as (url, _pid), gateways(workdir, url, 2) as servers:
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


# (name, loadgen flags): the S2 and S3 shapes, then publishing through the Lua path.
COST_LOADS = (
    ("S2", ("-subs", "1000", "-rates", "50", "-step", "10s", *OPEN_LOOP)),
    ("S3", ("-subs", "1000", "-rates", "10,20,30,50,70", "-step", "4s", "-stop-after", "5",
            *OPEN_LOOP)),
    ("publish-post", ("-subs", "10", "-mode", "post", "-rates", "2000,4000,6000", "-step", "5s",
                      "-pub-conns", "16")),
    ("publish-ndjson", ("-subs", "10", "-mode", "ndjson", "-batch", "50", "-rates",
                        "5000,10000,20000,40000", "-step", "5s", "-pub-conns", "4")),
)  # fmt: skip
WORKER_COUNTS = (1, 2)


def tree_pids(root: int) -> list[int]:
    """``root`` and every process below it (the serve parent and its workers), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def cpu_of(pid: int) -> float:
    """User plus system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_now(serve_pid: int, redis_pid: int) -> dict[str, float]:
    """CPU seconds so far of the whole serve tree and of redis-server."""
    return {
        "serve": sum(cpu_of(pid) for pid in tree_pids(serve_pid)),
        "redis": cpu_of(redis_pid),
    }


def cost_steps(server: Server, redis_pid: int, flags: tuple[str, ...]) -> list[dict[str, Any]]:
    """Run one load against ``server``; its step records, each with the CPU it cost."""
    argv = [
        "taskset", "-c", LOAD_CORE, str(LOADGEN), "-url", server.url, "-no-wait",
        "-deadline", "240s", *flags,
    ]  # fmt: skip
    steps: list[dict[str, Any]] = []
    before = cpu_now(server.pid, redis_pid)
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as load:
        assert load.stdout is not None
        for line in load.stdout:
            record = json.loads(line)
            now = cpu_now(server.pid, redis_pid)
            if record["event"] == "step":
                record["cpu_s"] = {key: now[key] - before[key] for key in now}
                record["cpu_pressure"] = cpu_pressure()
                steps.append(record)
            before = now
        load.wait(timeout=300)
    return steps


@contextmanager
def serve_workers(workdir: Path, broker_url: str, workers: int) -> Iterator[Server]:
    """``pulseboard serve --workers N`` on ``broker_url``, pinned (with its children) to core 0."""
    config = workdir / f"pulseboard-w{workers}.toml"
    config.write_text(config_text(broker_url))
    port = free_port()
    argv = [str(PYTHON), "-m", "app", "serve", "--config", str(config),
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]  # fmt: skip
    server = Server(f"workers-{workers}", argv, port, workdir / f"workers-{workers}.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def cost_summary(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """CPU per delivery (serve tree, redis, both) over the steps, and per published event."""
    received = sum(step["received"] for step in steps)
    accepted = sum(step["publish"]["accepted"] for step in steps)
    serve = sum(step["cpu_s"]["serve"] for step in steps)
    redis = sum(step["cpu_s"]["redis"] for step in steps)
    return {
        "received": received,
        "accepted": accepted,
        "us_per_delivery": 1e6 * (serve + redis) / received if received else None,
        "serve_us_per_delivery": 1e6 * serve / received if received else None,
        "redis_us_per_delivery": 1e6 * redis / received if received else None,
        "redis_us_per_event": 1e6 * redis / accepted if accepted else None,
        "serve_us_per_event": 1e6 * serve / accepted if accepted else None,
        "failed_steps": [step["rate"] for step in steps if step["failed"]],
        "steps": [
            {
                "rate": step["rate"],
                "accepted_per_s": step["publish_rate"],
                "delivered_per_s": step["delivered_per_s"],
                "p99_ms": step["p99_ms"],
                "failed": step["failed"],
                "serve_cpu": step["cpu_s"]["serve"] / step["wall_s"],
                "redis_cpu": step["cpu_s"]["redis"] / step["wall_s"],
            }
            for step in steps
        ],
    }


def workers_main(only: tuple[str, ...] | None = None, repeat: int = 1) -> None:
    """``--workers``: the cost of --workers 2 against --workers 1, and publishes through Redis.

    With ``repeat`` > 1 the two set-ups alternate that many times: one run's
    ratio moves by up to 0.1 with the machine, the median of the pairs less.
    """
    loads = [(name, flags) for name, flags in COST_LOADS if only is None or name in only]
    report: dict[str, Any] = {"machine": machine(), "file_limit": raise_file_limit()}
    results: dict[str, dict[str, Any]] = {}
    for attempt in range(1, repeat + 1):
        suffix = f" run={attempt}" if repeat > 1 else ""
        for workers in WORKER_COUNTS:
            with tempfile.TemporaryDirectory() as tmp:
                workdir = Path(tmp)
                with (
                    redis_server(workdir) as (url, redis),
                    serve_workers(workdir, url, workers) as server,
                ):
                    for name, flags in loads:
                        results[f"{name} workers={workers}{suffix}"] = cost_summary(
                            cost_steps(server, redis, flags)
                        )
    report["results"] = results
    report["ratios"] = print_workers(results, repeat)
    report["machine"]["loadavg_end"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"workers-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


def print_workers(results: dict[str, dict[str, Any]], repeat: int) -> dict[str, list[float]]:
    """Print every set-up's figures, then the S2 and S3 ratios (each pair, the median)."""
    print(f"{'load':34} {'us/delivery':>11} {'serve':>7} {'redis':>7} {'redis us/ev':>11}  failed")
    for name, figures in results.items():
        serve, redis = figures["serve_us_per_delivery"], figures["redis_us_per_delivery"]
        print(f"{name:34} {_f(figures['us_per_delivery']):>11} {_f(serve):>7} {_f(redis):>7} "
              f"{_f(figures['redis_us_per_event']):>11}  {figures['failed_steps']}")  # fmt: skip
        for step in figures["steps"]:
            print(f"  rate {step['rate']:>7g}: accepted {step['accepted_per_s']:>9,.0f}/s "
                  f"delivered {step['delivered_per_s']:>9,.0f}/s p99 {step['p99_ms']:>7.1f} ms "
                  f"serve {step['serve_cpu']:.2f} redis {step['redis_cpu']:.2f} "
                  f"{step['failed'] or 'ok'}")  # fmt: skip
    ratios: dict[str, list[float]] = {}
    for load in ("S2", "S3"):
        for attempt in range(1, repeat + 1):
            suffix = f" run={attempt}" if repeat > 1 else ""
            one = results.get(f"{load} workers=1{suffix}")
            two = results.get(f"{load} workers=2{suffix}")
            if one and two and one["us_per_delivery"] and two["us_per_delivery"]:
                ratios.setdefault(load, []).append(two["us_per_delivery"] / one["us_per_delivery"])
        if load in ratios:
            each = " ".join(f"{ratio:.2f}x" for ratio in ratios[load])
            print(f"{load}: CPU per delivery, --workers 2 / --workers 1 = {each}; "
                  f"median {statistics.median(ratios[load]):.2f}x")  # fmt: skip
    return ratios


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


if __name__ == "__main__":
    main()
